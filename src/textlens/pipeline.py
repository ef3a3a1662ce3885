"""explain / explain_many: texts in, Explanations out (encode, attribute, from_scores)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from textlens import progress
from textlens.adapters.encoding import TruncationWarning
from textlens.adapters.hf import HFAdapter
from textlens.adapters.loading import load_model
from textlens.corpus import run_corpus
from textlens.devices import resolve_device
from textlens.errors import TextlensError
from textlens.explanation import Explanation, from_scores
from textlens.memory import fits, memory_limit, plan_checkpointing, planned
from textlens.methods import DEFAULT_METHOD, get_method
from textlens.methods.base import Method, describe
from textlens.targets import as_target, several


def explain(
    text: str | tuple[str, str],
    model: Any = None,
    method: str | Method = DEFAULT_METHOD,
    target: Any = None,
    *,
    target_kind: str | None = None,
    max_length: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    tokenizer: Any = None,
    max_memory: int | str | None = None,
    **params: Any,
) -> Explanation:
    """Explain one text: which tokens the model's prediction (or any target) depends on.

    Args:
        text: A string, or a ``(question, context)`` pair for question answering.
        model: A folder, a HF model (then pass ``tokenizer=`` via ``load_model``), an adapter,
            or None for the demo sentiment classifier.
        method: A registry name (``textlens.list_methods()``) or a method instance.
        target: None (the predicted class, or the task's natural target), a class name or index,
            a next token, or a ``textlens.targets`` Target.
        target_kind: A kind of ``textlens.targets.TARGETS`` that reads ``target`` (None: the
            model's task decides).
        max_length: Keep at most this many tokens (never more than the model accepts).
        device: ``"cpu"`` or ``"cuda"``; None keeps the adapter's device (CPU for new ones).
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` for a model loaded here (see
            ``load_model``); the methods compute in float32 whatever the model's dtype.
        tokenizer: The tokenizer of a model object (as ``load_model(model, tokenizer)``).
        max_memory: The memory the run may plan to use, as bytes or text such as ``"16GiB"``
            (None: a share of the memory free on the device). Batches are split, and gradient
            checkpointing used, to stay within it; what cannot fit is refused before it runs.
        params: Settings of the method, e.g. ``n_steps=32``.

    Example:
        >>> exp = explain("a gripping, beautifully acted film", method="gradient")
        >>> exp.target.label
        'fresh'
    """
    exps = explain_many(
        [text], model, method, target, target_kind=target_kind, max_length=max_length,
        device=device, dtype=dtype, tokenizer=tokenizer, max_memory=max_memory, **params,
    )  # fmt: skip
    if len(exps) > 1:
        raise TextlensError(
            f"{target!r} names {len(exps)} labels, which give as many explanations: use "
            "explain_labels(text, model, labels=...) for a list of them"
        )
    return exps[0]


def explain_labels(
    text: str | tuple[str, str],
    model: Any = None,
    method: str | Method = DEFAULT_METHOD,
    labels: Any = "all",
    *,
    output: str = "logit",
    **options: Any,
) -> list[Explanation]:
    """Explain one text once per class label: several labels of a multi-label classifier (each
    by its own sigmoid), or every class of any classifier.

    Args:
        text, model, method: As for ``explain``.
        labels: Class names or indices (a list), or ``"all"`` (default): every class.
        output: ``"logit"`` (default; a multi-label classifier's logit is the log-odds of its
            label's sigmoid probability) or ``"probability"``.
        options: The other arguments of ``explain`` (``device``, ``tokenizer``, method
            settings...).

    Example:
        >>> exps = explain_labels("a gripping, beautifully acted film", labels="all")
        >>> [e.target.label for e in exps]
        ['rotten', 'fresh']
    """
    from textlens.targets import ClassTarget

    if isinstance(labels, tuple | list) and not labels:
        raise TextlensError("no labels given: name at least one class, or 'all'")
    if output not in ("logit", "probability"):
        raise TextlensError(f"output={output!r} is not valid: use 'logit' or 'probability'")
    chosen = list(labels) if isinstance(labels, tuple | list) else labels
    adapter = resolve_adapter(
        model, options.pop("device", None), dtype=options.pop("dtype", None),
        tokenizer=options.pop("tokenizer", None),
    )  # fmt: skip
    if adapter.task != "sequence-classification":
        raise TextlensError(
            f"explain_labels explains a classifier's labels; this is a {adapter.task} model"
        )
    goal = ClassTarget(label=chosen, output=output)  # type: ignore[arg-type]
    if goal.split(adapter) is None:
        goal = ClassTarget(label=(chosen,), output=output)  # type: ignore[arg-type]
    return explain_many([text], adapter, method, goal, **options)


def explain_pair(
    text: str,
    other: str,
    model: Any = "encoder",
    method: str | Method = DEFAULT_METHOD,
    *,
    pooling: str | None = None,
    measure: str = "cosine",
    max_length: int | None = None,
    device: str | None = None,
    **params: Any,
) -> tuple[Explanation, Explanation]:
    """Explain the similarity of two texts under a sentence encoder, on both sides.

    Each text is explained against the other's pooled vector, held fixed
    (``textlens.targets.Similarity``): the first explanation says which words of ``text`` make
    it similar to ``other``, the second the same of ``other``. Both have the same target score,
    the similarity of the pair.

    Args:
        text: The first text.
        other: The second text.
        model: An encoder (folder, adapter); default ``"encoder"``, the packaged
            all-MiniLM-L6-v2 (mean pooling is how that model is meant to be used).
        method: As for ``explain``.
        max_length: As for ``explain``.
        device: As for ``explain``.
        params: The method's settings, as for ``explain``.
        pooling: ``"mean"`` or ``"cls"``; None: the model's own (a SentenceTransformer's),
            else mean.
        measure: ``"cosine"`` (default) or ``"dot"``.

    Example:
        >>> a, b = explain_pair("A man is playing a guitar.", "Someone plays an instrument.")
        >>> round(a.target.score, 2) == round(b.target.score, 2)
        True
    """
    from textlens.targets import Similarity

    for t in (text, other):
        if not isinstance(t, str) or not t.strip():
            raise TextlensError("explain_pair needs two non-empty texts")
    adapter = resolve_adapter(model, device)
    pooling = pooling or getattr(adapter, "pooling", None) or "mean"
    first = explain_many(
        [text], adapter, method, Similarity(other, pooling, measure),  # type: ignore[arg-type]
        max_length=max_length, **params,
    )[0]  # fmt: skip
    second = explain_many(
        [other], adapter, method, Similarity(text, pooling, measure),  # type: ignore[arg-type]
        max_length=max_length, **params,
    )[0]  # fmt: skip
    return first, second


def explain_many(
    texts: Sequence[str | tuple[str, str]],
    model: Any = None,
    method: str | Method = DEFAULT_METHOD,
    target: Any = None,
    *,
    target_kind: str | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    tokenizer: Any = None,
    truncate: str | None = None,
    documents: Sequence[Sequence[tuple[int, int]]] | None = None,
    max_memory: int | str | None = None,
    **params: Any,
) -> list[Explanation]:
    """Explain many texts, in length-sorted batches; results come back in input order.

    Several labels as the target (``target=["toxic", "insult"]``, ``"all"``) give one
    Explanation per text and label, the labels of the first text first.

    Takes the arguments of ``explain`` plus ``batch_size`` (texts per batch), ``truncate``
    (``"left"`` keeps a long text's end, ``"right"`` its start; None: an encoder's start, and a
    causal LM's text is refused) and ``documents`` (per text, the character spans of the
    documents it was built from, for ``to_units("document")``; see ``textlens.prompt``). A
    batch whose memory does not fit ``max_memory`` (or the free memory) runs in halves.
    """
    if isinstance(texts, str):
        raise TextlensError("explain_many takes a list of texts; use explain() for one text")
    try:
        texts = list(texts)
    except TypeError:
        raise TextlensError(
            f"explain_many takes a list of texts, not {type(texts).__name__}"
        ) from None
    for item in texts:
        parts = item if isinstance(item, tuple) else (item,)
        if len(parts) not in (1, 2) or not all(isinstance(p, str) for p in parts):
            raise TextlensError(
                f"text must be a string or a (question, context) pair of strings, not "
                f"{type(item).__name__} {item!r:.60}"
                + (
                    "; decode bytes first, e.g. data.decode('utf-8')"
                    if isinstance(item, bytes)
                    else ""
                )
            )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TextlensError(
            f"batch_size={batch_size!r} is not valid: use a whole number, at least 1"
        )
    if not texts:
        return []
    adapter = resolve_adapter(model, device, dtype=dtype, tokenizer=tokenizer)
    chosen = with_corpus(get_method(method, **params), texts, adapter.name)
    goal = as_target(adapter, target, target_kind)
    targets = several(goal, adapter)
    if targets:  # several labels: each text explained once per label, text by text
        each = [
            explain_many(
                texts, adapter, chosen, one, batch_size=batch_size, max_length=max_length,
                truncate=truncate, documents=documents, max_memory=max_memory,
            )
            for one in targets
        ]  # fmt: skip
        return [each[k][i] for i in range(len(texts)) for k in range(len(targets))]
    order = sorted(range(len(texts)), key=lambda i: len("".join(texts[i])))
    results: list[Explanation | None] = [None] * len(texts)
    n_cut, kept = 0, None
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        began = time.perf_counter()
        batch = adapter.encode(
            [texts[i] for i in index], max_length=max_length, warn=False, truncate=truncate,
            documents=None if documents is None else [documents[i] for i in index],
        )  # fmt: skip
        for b, cut in enumerate(batch.n_truncated):
            if cut:
                n_cut += 1
                kept = min(kept or 10**9, len(batch.tokens[b]))
        with memory_limit(max_memory):
            done = _run_fitting(adapter, batch, chosen, goal, began)
        for i, exp in zip(index, done, strict=True):
            results[i] = exp
    if n_cut:
        warnings.warn(
            f"{n_cut} text(s) were longer than the model accepts; kept the first {kept} tokens "
            "(special tokens included)",
            TruncationWarning,
            stacklevel=2,
        )
    return [r for r in results if r is not None]


def _run_fitting(
    adapter: Any, batch: Any, method: Method, goal: Any, began: float
) -> list[Explanation]:
    """``run_batch``, in halves of the batch while the whole does not fit the memory budget
    (fewer texts a batch first, the same work; checkpointing, a pass more, for one text)."""
    if len(batch) > 1 and not fits(method, adapter, batch, checkpointing=False):
        half = len(batch) // 2
        first = _run_fitting(adapter, batch.select(list(range(half))), method, goal, began)
        rest = range(half, len(batch))
        return first + _run_fitting(adapter, batch.select(list(rest)), method, goal, began)
    return run_batch(adapter, batch, method, goal, began=began)


def run_batch(
    adapter: Any,
    batch: Any,
    method: Method,
    goal: Any,
    *,
    clean: Any = None,
    shown: Any = None,
    began: float | None = None,
) -> list[Explanation]:
    """One batch through the hot path: bind the target on the clean outputs (run here unless
    given), refuse settings whose memory cannot fit, attribute, and make the Explanations.

    Args:
        adapter, batch, method: The model, the encoded texts and the method instance.
        goal: A Target (``textlens.targets``).
        clean: The batch's outputs without noise, when the caller has them.
        shown: The batch the Explanations describe, when it is not ``batch`` (the rows of a
            generated answer run as one sequence read at each output token's position).
        began: When the work on the batch began (for ``Explanation.elapsed``).
    """
    began = time.perf_counter() if began is None else began
    if clean is None:
        with torch.no_grad():
            clean = adapter.forward(
                adapter.embed(batch), batch, hidden_states=goal.needs_hidden_states
            )
    bound = goal.bind(adapter, batch, clean)
    # the memory plan: refuses what cannot fit, checkpoints where only that fits
    with planned(method, adapter, batch):
        _say_cost(method, adapter, batch)
        # set once around the hot path: no method needs the weights' gradients, and methods
        # turn gradients on only where they take them (torch.enable_grad)
        with frozen(adapter), torch.no_grad():
            scores = method.attribute(adapter, batch, bound)
    elapsed = time.perf_counter() - began
    return from_scores(
        batch if shown is None else shown, scores, bound.infos, method, adapter.name, elapsed
    )


def check_target(
    model: Any, target: Any, texts: Sequence[str], *, max_length: int | None = None
) -> None:
    """Bind ``target`` on the first of ``texts`` that encodes: a bad target fails here, cheaply.

    Batch jobs call this before they create any file.
    """
    adapter = resolve_adapter(model, None)
    goal = as_target(adapter, target)
    if several(goal, adapter):
        raise TextlensError(
            "a job explains one --target per row: give one label (several labels go with one "
            "text: textlens explain, or explain_labels in Python)"
        )
    for text in texts:
        try:
            batch = adapter.encode([text], max_length=max_length, warn=False)
        except TextlensError:
            continue  # that row will be an error row of its own
        with torch.no_grad():
            clean = adapter.forward(
                adapter.embed(batch), batch, hidden_states=goal.needs_hidden_states
            )
        goal.bind(adapter, batch, clean)
        return


def check_cost(
    model: Any,
    method: str | Method,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    max_memory: int | str | None = None,
    **params: Any,
) -> None:
    """Refuse settings whose memory for the longest of ``texts`` would not fit (a batch that
    does not fit runs in halves, down to one text; ``textlens.memory``).

    Batch jobs call this before they create any file.
    """
    adapter = resolve_adapter(model, None)
    chosen = get_method(method, **params)
    longest = sorted(texts, key=len, reverse=True)[:1]
    try:
        batch = adapter.encode(longest, max_length=max_length, warn=False)
    except TextlensError:
        return  # a row that does not encode is an error row of its own
    with memory_limit(max_memory):
        plan_checkpointing(chosen, adapter, batch)


def _say_cost(method: Method, adapter: Any, batch: Any) -> None:
    """Tell a listener what a method expects the batch to cost, when it can estimate it (from
    one more forward pass, timed now that the model is warm): its own ``estimate_seconds``, or
    its passes (``passes``), each about three forward passes' time when it goes backward too."""
    estimate = getattr(method, "estimate_seconds", None)
    count = getattr(method, "passes", None)
    if (estimate is None and count is None) or not progress.listening():
        return
    clock = time.perf_counter()
    last = torch.tensor([batch.input_ids.shape[1] - 1], device=batch.input_ids.device)
    with torch.no_grad():  # a causal LM's logits at one position: the vocabulary is wide
        adapter.forward(
            adapter.embed(batch),
            batch,
            **({"logits_at": last} if getattr(adapter, "keeps_logits", False) else {}),
        )
    pass_seconds = time.perf_counter() - clock
    if estimate is not None:
        typical, most = estimate(adapter, batch, pass_seconds)
    else:  # count is set: the early return above covers neither being there
        assert count is not None
        backward = describe(type(method), "backward")
        factor = (3.0 + bool(getattr(adapter, "checkpointing", False))) if backward else 1.0
        typical = most = int(count(adapter, batch)) / max(1, len(batch)) * pass_seconds * factor
    most_words = f"at most {progress.duration(most)}; " if most > 1.01 * typical else ""
    progress.say(
        f"{method.name}: about {progress.duration(typical)} for {len(batch)} text(s) "
        f"({most_words}fewer layers or a lower cost setting are faster)",
        seconds=typical,
    )


def with_corpus(method: Method, texts: Sequence[Any], model_name: str) -> Method:
    """A method that takes reference statistics from a corpus gets the run's own texts, when
    the user gave none and there are enough of them (``textlens.corpus``)."""
    name = describe(type(method), "corpus_setting")
    if name is None or getattr(method, name) is not None:
        return method
    key = run_corpus(texts, model_name)
    return method if key is None else dataclasses.replace(method, **{name: key})  # type: ignore[type-var]


def frozen(adapter: Any) -> Any:
    """Within the block the adapter's weights need no gradients (when it can say so)."""
    freeze = getattr(adapter, "frozen", None)
    return freeze() if freeze is not None else contextlib.nullcontext()


def resolve_adapter(
    model: Any, device: str | None = None, *, dtype: str | None = None, tokenizer: Any = None
) -> HFAdapter:
    """The adapter for ``model`` (a folder, a name of the zoo, an adapter, a model object with
    its ``tokenizer``, or None for the demo classifier); a model that was given on another
    device is not moved."""
    adapter = load_model(model, tokenizer, device=device or "cpu", dtype=dtype)
    if device is not None and resolve_device(device) != adapter.device:
        raise TextlensError(
            f"the model is on {adapter.device}, not {device}: textlens does not move a model it "
            f"was given; load it there (load_model(..., device={str(device)!r})) or leave "
            "device out"
        )
    return adapter

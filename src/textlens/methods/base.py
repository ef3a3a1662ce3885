"""The one interface every attribution method implements, and helpers they share."""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.cancel import check as check_cancelled
from textlens.lazy import torch
from textlens.targets import BoundTarget


@dataclass(frozen=True)
class Scores:
    """What a method returns for a batch.

    Attributes:
        values: ``(B, T)`` or ``(B, L, T)``; padding positions are 0.
        axes: ``("batch", "token")`` or ``("batch", "layer", "token")``.
        layers: Layer numbers of the ``L`` axis (hidden-state indices), if layered.
        extras: Other per-text outputs, each with the batch as its first axis.
        extra_axes: The axes of each extra after the batch axis, e.g. ``("layer", "token")``:
            a ``token`` axis (always the last) is cut to each text's length, a ``layer`` axis
            follows the layers when an explanation is cut to some of them. An extra that is not
            named here is one value per text.
    """

    values: torch.Tensor
    axes: tuple[str, ...] = ("batch", "token")
    layers: tuple[int, ...] | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    extra_axes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    parts: tuple[str, ...] = ()
    """Names of extras that add up to the scores (a decomposition, e.g. per sub-embedding)."""
    explains: str = ""
    """What the scores explain, when it is not the bound target (e.g. a layer's hidden states)."""

    def __post_init__(self) -> None:
        for name, axes in self.extra_axes.items():
            if "token" in axes and axes[-1] != "token":
                raise ValueError(f"extra {name!r}: the token axis must come last, got {axes}")
            if name in self.extras and self.extras[name].dim() != len(axes) + 1:
                raise ValueError(
                    f"extra {name!r} has {self.extras[name].dim()} axes, not batch + {axes}"
                )


@runtime_checkable
class Method(Protocol):
    """An attribution method: a frozen dataclass of settings with ``attribute``.

    Besides its settings (fields made with ``settings.setting``, which carry their ranges), a
    method describes itself as data, so that no front end, renderer, evaluation or test needs to
    name it (``describe(cls)`` gives every item with its default):

    - ``score_label``: what a score means, for legends and axes.
    - ``unit_reduce``: how sub-word scores combine into words and sentences (``sum`` for
      additive scores; ``max``, ``mean`` or ``l2`` where a sum has no meaning).
    - ``diagnostics``: ``(extra, label)`` pairs a front end prints after the scores.
    - ``cost_setting``: the setting that scales the work (and memory), if any.
    - ``memory_setting``: the setting that scales the memory, where it is not the cost setting
      (a memory refusal names the largest value of it that fits).
    - ``evaluation_settings``: settings the method comparison uses instead of the defaults.
    - ``test_settings``: cheap settings for the contract tests.
    - ``batch_tolerance``: how closely a batched result equals one text at a time
      (``rtol``/``atol``), and ``stable_output``: the output compared (``scores`` or an extra).
    - ``provides``: optional outputs it can give (``parts``: scores split into parts;
      ``units``: per-unit scores), each with the settings that turn it on.
    - ``layer_totals``: what every layer's scores add up to, when the method promises one
      (pictures say so when the totals differ).
    - ``corpus_setting``: the setting naming a corpus (``textlens.corpus``) the method takes
      reference statistics from; left None, a run over enough texts fills it with them.
    - ``memory_bytes(model, batch)`` (a function, required: the registry refuses a method
      without one): the estimated peak memory for a batch, checked against the free memory
      before every run and shown in plans.
    - ``passes(model, batch)`` (a function, optional): the rows the model runs for a batch, for
      plans announced before long runs.
    - ``reads_positions``: a causal LM's score for a token read at one position depends only on
      the inputs up to it, and the method's inputs for texts that are the same are the same. The
      tokens of a generated answer then run as one sequence read at each token's position,
      sharing their forward passes (``target_and_grad`` and ``target_values`` find the rows
      with the same input).
    - ``backward``: the method runs a backward pass through the model for every pass it counts
      (``passes``); plans count such a pass as about three forward passes' time, and gradient
      checkpointing can bound its memory.
    - ``encoder_decoder``: the method explains an encoder-decoder model's output (the source and
      the decoder's tokens seen as one sequence); False: such a run is refused in one line.
    """

    name: ClassVar[str]
    signed: ClassVar[bool]
    layered: ClassVar[bool]

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        """Scores for every token of every text in ``batch``."""
        ...


DESCRIPTION_DEFAULTS: dict[str, Any] = {
    "score_label": "",
    "unit_reduce": "sum",
    "diagnostics": (),
    "cost_setting": None,
    "memory_setting": None,
    "evaluation_settings": {},
    "test_settings": {},
    "batch_tolerance": {"rtol": 1e-4, "atol": 1e-5},
    "stable_output": "scores",
    "provides": {},
    "corpus_setting": None,
    "layer_totals": "",
    "reads_positions": False,
    "backward": False,
    "encoder_decoder": True,
}


def describe(cls: Any, item: str) -> Any:
    """One item of a method class's self-description (see ``Method``), or its default."""
    default = DESCRIPTION_DEFAULTS[item]
    if item == "score_label" and not getattr(cls, item, ""):
        return (
            "attribution (+ for target)" if getattr(cls, "signed", True) is True else "importance"
        )
    return getattr(cls, item, default)


@runtime_checkable
class EmbeddingMethod(Protocol):
    """A method that can start from given word embeddings (so SmoothGrad can wrap it)."""

    def attribute_at(
        self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget, embeds: torch.Tensor
    ) -> Scores: ...


def row_index(n_texts: int, repeats: int, device: torch.device) -> torch.Tensor:
    """Text index of each row when every text is repeated ``repeats`` times in a row."""
    return torch.arange(n_texts, device=device).repeat_interleave(repeats)


def path_points(
    n_texts: int, n_steps: int, device: torch.device, *, by_point: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of a batched path: each text repeated over ``n_steps`` Gauss-Legendre points.

    Args:
        by_point: Order the rows point by point (all texts at the first point, then the
            second, ...) rather than text by text, so that a pass of rows holds the same points
            of many texts (texts that are the same then share their forward passes).

    Returns:
        ``(rows, alphas, weights)``, each ``(n_texts * n_steps,)``: the text of every row, its
        point on [0, 1] and its quadrature weight.
    """
    alphas, weights = gauss_legendre(n_steps, device)
    if by_point:
        texts = torch.arange(n_texts, device=device).repeat(n_steps)
        return texts, alphas.repeat_interleave(n_texts), weights.repeat_interleave(n_texts)
    return row_index(n_texts, n_steps, device), alphas.repeat(n_texts), weights.repeat(n_texts)


def chunks(n_rows: int, size: int | None) -> Iterator[slice]:
    """Slices covering ``range(n_rows)`` in pieces of at most ``size`` rows."""
    step = n_rows if not size or size <= 0 else size
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def width_of(batch: TokenBatch, rows: torch.Tensor) -> int:
    """Longest real length among ``rows``: positions past it are padding for all of them."""
    return int(batch.lengths[rows].max())


def target_and_grad(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    embeds: torch.Tensor,
    rows: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target values ``(N,)`` and their gradients with respect to ``embeds`` ``(N, T, K)``.

    The forward pass runs on the rows' own longest length (``trim``), so rows of short texts in
    a batch with long ones cost no padding; gradients at trimmed positions are 0.
    """
    width = width_of(batch, rows)
    shared = shared_rows(batch, target, embeds[:, :width], rows)
    if shared is not None:
        values, grad = _shared_target_and_grad(model, batch, target, embeds, rows, width, shared)
    else:
        values, grad = _target_and_grad(model, batch, target, embeds, rows, width)
    if width < embeds.shape[1]:
        grad = torch.nn.functional.pad(grad, (0, 0, 0, embeds.shape[1] - width))
    return values.detach(), grad


def _target_and_grad(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    embeds: torch.Tensor,
    rows: torch.Tensor,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        leaf = embeds[:, :width].detach().requires_grad_(True)
        values = forward_and_read(model, batch, target, leaf, rows, rows)
        check_cancelled()
        (grad,) = torch.autograd.grad(values.sum(), leaf)
    return values, grad


def forward_and_read(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    embeds: torch.Tensor,
    out_rows: torch.Tensor,
    rows: torch.Tensor,
    source: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run ``embeds`` (texts ``out_rows`` of ``batch``, cut to their width) and read the target
    of texts ``rows``, row ``m`` from output row ``source[m]`` (default ``m``). A causal LM that
    can computes its logits only at the positions read (see ``read_positions``)."""
    logits_at, at = read_positions(model, target, rows)
    extra = {} if logits_at is None else {"logits_at": logits_at}
    out = model.forward(
        embeds,
        trim(batch, embeds.shape[1]),
        out_rows,
        hidden_states=target.needs_hidden_states,
        **extra,
    )
    if target.select_from is None:
        return target.select(out, rows)
    if source is None:
        source = torch.arange(len(rows), device=rows.device)
    return target.select_from(out, rows, source, at)


@dataclass(frozen=True)
class SharedRows:
    """Rows of a pass that have the same input: ``unique`` holds one row of each input, row
    ``m`` reads its output from ``unique[source[m]]``, and ``rank[m]`` counts the rows before
    ``m`` with the same input (its slot in a batched backward pass)."""

    unique: torch.Tensor
    source: torch.Tensor
    rank: torch.Tensor


def forward_unique(
    model: ModelAdapter,
    batch: TokenBatch,
    embeds: torch.Tensor,
    *,
    hidden_states: bool = False,
    logits_at: torch.Tensor | None = None,
) -> Any:
    """``model.forward(embeds, batch)`` without gradients, run once for texts of ``batch`` that
    are the same (the rows of a generated answer); the outputs have one row per text. With
    ``logits_at`` (sorted positions; a model with ``keeps_logits``), a causal LM's logits are
    computed there only and the outputs say where (``logits_at``)."""
    rows = torch.arange(len(batch), device=embeds.device)
    shared = _same_inputs(batch, embeds, rows)
    extra = {} if logits_at is None else {"logits_at": logits_at}
    with torch.no_grad():
        if shared is None:
            out = model.forward(embeds, batch, hidden_states=hidden_states, **extra)
            if logits_at is None:
                return out
            source = rows
        else:
            out = model.forward(
                embeds[shared.unique], batch, shared.unique, hidden_states=hidden_states, **extra
            )
            source = shared.source
    states = getattr(out, "hidden_states", None)
    return SimpleNamespace(
        logits=out.logits[source],
        hidden_states=None if not states else tuple(h[source] for h in states),
        logits_at=getattr(out, "logits_at", logits_at),
    )


def has_shared_rows(batch: TokenBatch, target: BoundTarget) -> bool:
    """Whether some texts of ``batch`` are the same token for token and the target can share
    their forward passes (``shared_rows``)."""
    if target.select_from is None or len(batch) < 2:
        return False
    return len(torch.unique(batch.input_ids, dim=0)) < len(batch)


def shared_rows(
    batch: TokenBatch, target: BoundTarget, embeds: torch.Tensor, rows: torch.Tensor
) -> SharedRows | None:
    """Which rows share one input, when some do and the target can read each row's value from
    another row's output (``BoundTarget.select_from``); None otherwise.

    The rows of a generated answer are one sequence read at different positions: their inputs
    are the same, so one forward pass serves them all.
    """
    if target.select_from is None:
        return None
    return _same_inputs(batch, embeds, rows)


def _same_inputs(batch: TokenBatch, embeds: torch.Tensor, rows: torch.Tensor) -> SharedRows | None:
    n = len(rows)
    if n < 2:
        return None
    flat = embeds.detach().reshape(n, -1)
    masks = batch.attention_mask[rows, : embeds.shape[1]].to(flat.dtype)
    if batch.token_type_ids is not None:
        masks = torch.cat([masks, batch.token_type_ids[rows, : embeds.shape[1]].to(flat.dtype)], 1)
    # cheap first, without a copy of the rows: no two rows have the same sums, so none alike
    sums = flat.sum(dim=1, dtype=torch.float64) + masks.sum(dim=1, dtype=torch.float64)
    if int(sums.unique().numel()) == n:
        return None
    keys = torch.cat([flat, masks], dim=1)
    unique_keys, source = torch.unique(keys, dim=0, return_inverse=True)
    if len(unique_keys) == n:
        return None
    first = torch.full((len(unique_keys),), n, dtype=torch.long, device=rows.device)
    order = torch.arange(n, device=rows.device)
    first.scatter_reduce_(0, source, order, reduce="amin")
    seen: dict[int, int] = {}
    ranks = []
    for u in source.tolist():
        ranks.append(seen.get(u, 0))
        seen[u] = ranks[-1] + 1
    rank = torch.tensor(ranks, dtype=torch.long, device=rows.device)
    return SharedRows(unique=first, source=source, rank=rank)


def read_positions(
    model: ModelAdapter, target: BoundTarget, rows: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """For a target read at one position of a causal LM's logits, and a model that can compute
    the logits at some positions only: the positions to compute (sorted) and, for each row, its
    column among them; ``(None, None)`` otherwise."""
    if target.positions is None or not getattr(model, "keeps_logits", False):
        return None, None
    wanted = target.positions[rows]
    kept = torch.unique(wanted)
    return kept, torch.searchsorted(kept, wanted)


BACKWARD_TOKENS = 2048
"""Tokens a backward pass of rows that share their inputs holds: the rows' gradients run in
groups of about this size (on a CPU, a batched backward pass much larger than this is slower
than a few passes of this size, and needs more memory)."""

PIECE_TOKENS = 1024
"""Rows that share inputs of at least this many tokens in all, with backward passes in more than
one group, run a causal LM forward in pieces of positions (``forward_pieces``): the backward
passes of the early output tokens then skip the positions after them."""

PIECES = 4
"""The most pieces such a forward pass is cut into. Small pieces cost more per position than
they save (with SmolLM2, 32 path points of a 55-token text and 20 output tokens: 2 to 4 pieces
saved 13-15% of the passes' time, 6 pieces 7%, and 20 pieces took 6% longer than none)."""


def _batched_grad(
    outputs: list[torch.Tensor], leaf: torch.Tensor, grad_outputs: list[torch.Tensor]
) -> torch.Tensor:
    """Gradients of ``sum_j (grad_outputs[j][s] * outputs[j]).sum()`` with respect to ``leaf``
    for every ``s``, from one backward pass batched over them (a pass each where batching
    fails). Work cancelled by its front end stops before each pass (``textlens.cancel``)."""
    check_cancelled()
    if len(grad_outputs[0]) == 1:
        grad = torch.autograd.grad(
            outputs, leaf, grad_outputs=[g[0] for g in grad_outputs], retain_graph=True
        )
        return grad[0][None]
    try:
        with warnings.catch_warnings():  # vmap's note on operations it loops over
            warnings.filterwarnings("ignore", message=".*performance drop.*")
            (grads,) = torch.autograd.grad(
                outputs, leaf, grad_outputs=grad_outputs, is_grads_batched=True, retain_graph=True
            )
    except (RuntimeError, NotImplementedError):  # vmap cannot batch it: a pass each
        grads = torch.stack(
            [
                _checked_grad(outputs, leaf, [g[s] for g in grad_outputs])
                for s in range(len(grad_outputs[0]))
            ]
        )
    return grads


def _checked_grad(
    outputs: list[torch.Tensor], leaf: torch.Tensor, grad_outputs: list[torch.Tensor]
) -> torch.Tensor:
    check_cancelled()
    return torch.autograd.grad(outputs, leaf, grad_outputs=grad_outputs, retain_graph=True)[0]


def _output_layer(model: ModelAdapter) -> torch.nn.Module | None:
    """A causal LM's output layer when it maps each position's hidden state to that position's
    logits on its own (a linear layer); None otherwise."""
    return model.output_layer()


@contextlib.contextmanager
def capture(module: torch.nn.Module, store: dict[str, Any]) -> Iterator[None]:
    """Record a module's first input and its output during a forward pass (the last call's as
    ``input`` and ``output``; every call's first input in order as ``inputs``)."""

    def hook(mod: torch.nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        store["input"] = args[0] if args else None
        store["output"] = output
        store.setdefault("inputs", []).append(store["input"])

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _piece_ends(
    model: ModelAdapter,
    shared: SharedRows,
    read: torch.Tensor,
    groups: list[slice],
    tokens: int,
) -> list[int] | None:
    """Where the pieces of a forward pass in pieces end (``PIECE_TOKENS``), each after the last
    position one or more whole backward groups read; None when the pass runs whole. ``read``:
    the position each row reads."""
    if len(groups) < 2 or tokens < PIECE_TOKENS or not getattr(model, "runs_in_pieces", False):
        return None
    last = []
    for group in groups:
        mine = (shared.rank >= group.start) & (shared.rank < group.stop)
        last.append(int(read[mine].max()))
    parts = np.array_split(np.arange(len(groups)), min(PIECES, len(groups)))
    return sorted({max(last[i] for i in part) + 1 for part in parts})


def _shared_target_and_grad(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    embeds: torch.Tensor,
    rows: torch.Tensor,
    width: int,
    shared: SharedRows,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass per distinct input; the rows' gradients from backward passes batched
    over the rows that share an input, in groups of about ``BACKWARD_TOKENS`` tokens.

    A target read from a causal LM's logits at one position per row starts those passes at the
    output layer's input: one backward pass through the output layer gives every row's
    gradient there (a row's value depends on its own position's hidden state only), so the
    passes per group skip the output layer, which is as wide as the vocabulary. When the
    passes are long and many, the forward pass runs in pieces of positions (``_piece_ends``)
    and a group's backward pass starts from its own piece, skipping the positions after it.
    """
    keep = shared.unique
    logits_at, at = read_positions(model, target, rows)
    head = None if logits_at is None else _output_layer(model)
    if head is not None and at is not None and logits_at is not None:
        flat = shared.source * len(logits_at) + at
        if len(torch.unique(flat)) < len(rows):  # two rows read one position: start at values
            head = None
    slots = int(shared.rank.max()) + 1
    per_pass = max(1, BACKWARD_TOKENS // max(1, len(keep) * width))
    groups = list(chunks(slots, per_pass))
    ends = None
    if head is not None and at is not None and logits_at is not None:
        ends = _piece_ends(model, shared, logits_at[at], groups, len(keep) * width)
    seen: dict[str, Any] = {}
    with torch.enable_grad():
        leaf = embeds[keep, :width].detach().requires_grad_(True)
        with contextlib.nullcontext() if head is None else capture(head, seen):
            if ends is None:
                values = forward_and_read(
                    model, batch, target, leaf, rows[keep], rows, shared.source
                )
            else:
                outs = model.forward_pieces(leaf, trim(batch, width), rows[keep], ends, logits_at)
                logits = SimpleNamespace(logits=torch.cat([out.logits for out in outs], dim=1))
                assert target.select_from is not None  # shared rows read through it
                values = target.select_from(logits, rows, shared.source, at)
        # where each row's backward pass starts: its value, or its position's hidden state in
        # its piece (``cells``: the row's index into ``pieces[piece[m]]``)
        pieces = [values]
        piece = torch.zeros_like(shared.rank)
        cells: tuple[torch.Tensor, ...] = (torch.arange(len(rows), device=rows.device),)
        seed = torch.ones_like(values)
        hidden = seen.get("inputs", [])
        if (
            head is not None
            and at is not None
            and logits_at is not None
            and len(hidden) == (1 if ends is None else len(ends))
            and all(isinstance(h, torch.Tensor) and h.dim() == 3 for h in hidden)
            and sum(h.shape[1] for h in hidden) == len(logits_at)
            and all(h.shape[0] == len(keep) for h in hidden)
        ):
            starts = torch.tensor([0] + [h.shape[1] for h in hidden], device=at.device).cumsum(0)
            piece = torch.searchsorted(starts[1:], at, right=True)
            cells = (shared.source, at - starts[piece])
            grads_there = torch.autograd.grad(values.sum(), hidden, retain_graph=True)
            pieces = list(hidden)
            seed = hidden[0].new_zeros((len(rows), hidden[0].shape[-1]))
            for p, there in enumerate(grads_there):
                sel = piece == p
                seed[sel] = there[(*(c[sel] for c in cells),)]
        grads = []
        for group in groups:
            slot = shared.rank - group.start
            mine = (slot >= 0) & (slot < group.stop - group.start)
            used = torch.unique(piece[mine]).tolist()
            picks = []
            for p in used:
                sel = mine & (piece == p)
                pick = pieces[p].new_zeros((group.stop - group.start, *pieces[p].shape))
                pick[(slot[sel], *(c[sel] for c in cells))] = seed[sel]
                picks.append(pick.detach())
            grads.append(_batched_grad([pieces[p] for p in used], leaf, picks))
    return values, torch.cat(grads)[shared.rank, shared.source]


def trim(batch: TokenBatch, width: int) -> TokenBatch:
    """The batch cut to its first ``width`` positions (cheap views; texts and tokens kept)."""
    if width >= batch.input_ids.shape[1]:
        return batch
    tt = batch.token_type_ids
    return dataclasses.replace(
        batch,
        input_ids=batch.input_ids[:, :width],
        attention_mask=batch.attention_mask[:, :width],
        special_mask=batch.special_mask[:, :width],
        token_type_ids=None if tt is None else tt[:, :width],
    )


def target_values(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    embeds: torch.Tensor,
    rows: torch.Tensor,
    internal_batch_size: int | None = None,
) -> torch.Tensor:
    """Target values ``(N,)`` for rows of embeddings, without gradients, in chunks; rows with
    the same input share one forward pass (see ``shared_rows``)."""
    width = width_of(batch, rows)
    shared = shared_rows(batch, target, embeds[:, :width], rows)
    if shared is not None and target.select_from is not None:
        keep = shared.unique
        out_rows = rows[keep]
        parts = []
        with torch.no_grad():
            for piece in chunks(len(keep), internal_batch_size):
                w = width_of(batch, out_rows[piece])
                inside = (shared.source >= piece.start) & (shared.source < piece.stop)
                which = inside.nonzero(as_tuple=True)[0]
                source = shared.source[which] - piece.start
                x = embeds[keep[piece], :w]
                read = forward_and_read(
                    model, batch, target, x, out_rows[piece], rows[which], source
                )
                parts.append((which, read))
        values = torch.empty(len(rows), dtype=parts[0][1].dtype, device=parts[0][1].device)
        for which, part in parts:
            values[which] = part
        return values
    parts = []
    with torch.no_grad():
        for piece in chunks(len(rows), internal_batch_size):
            width = width_of(batch, rows[piece])
            x = embeds[piece, :width]
            parts.append(forward_and_read(model, batch, target, x, rows[piece], rows[piece]))
    return torch.cat(parts)


def path_memory_bytes(
    model: ModelAdapter, batch: TokenBatch, n_steps: int, rows_per_pass: int, copies: int = 1
) -> int:
    """Rough peak memory of a path method: the quadrature, one pass of rows, the sums.

    numpy's Gauss-Legendre rule builds two ``n_steps`` x ``n_steps`` float64 matrices; a
    forward and backward pass keeps activations for ``rows_per_pass`` rows; ``copies`` tensors
    of the embeddings' size (inputs, baselines, gradient sums) live through the run.
    """
    n, width = batch.input_ids.shape
    rows = min(rows_per_pass, n * n_steps)
    embeddings = n * width * model.embed_dim * 4 * (3 + copies)
    return 16 * n_steps**2 + model.activation_bytes(rows, width) + embeddings


def gradient_memory_bytes(
    model: ModelAdapter, batch: TokenBatch, rows_per_pass: int | None = None
) -> int:
    """Rough peak memory of a forward and backward pass over ``batch`` (``rows_per_pass`` rows at
    a time; None: all of them), counting the rows of a generated answer as ``target_and_grad``
    runs them: one forward pass per distinct input, then backward passes in groups of about
    ``BACKWARD_TOKENS`` tokens."""
    n, width = batch.input_ids.shape
    rows = n if rows_per_pass is None else min(rows_per_pass, n)
    texts = len(torch.unique(batch.input_ids, dim=0)) if n > 1 else 1
    if model.causal and texts < n:
        group = max(1, BACKWARD_TOKENS // max(1, texts * width))
        rows = texts * (1 + min(group, -(-n // texts)))
    embeddings = 3 * n * width * model.embed_dim * 4  # input, gradient, product
    return model.activation_bytes(rows, width) + embeddings + logits_bytes(model, batch, rows)


def forward_memory_bytes(model: ModelAdapter, batch: TokenBatch, rows: int) -> int:
    """Rough peak memory of a forward pass without gradients over ``rows`` rows of ``batch``:
    one layer's activations and half of the next live at a time (measured on SmolLM2 at 0.5k
    to 2k tokens), not all layers'."""
    width = batch.input_ids.shape[1]
    layer = getattr(model, "layer_bytes", None)
    if layer is not None:  # the adapter's own figure, whether or not it checkpoints
        per_layer = int(layer(rows, width))
    else:
        per_layer = model.activation_bytes(rows, width) // max(1, model.n_layers)
    return 3 * per_layer // 2 + logits_bytes(model, batch, rows)


def logits_bytes(model: ModelAdapter, batch: TokenBatch, rows: int) -> int:
    """What a causal LM's output layer holds for ``rows`` rows: the logits and their softmax at
    every position, or at one position a row where the model computes only the ones read."""
    if model.task not in ("causal-lm", "seq2seq-lm"):
        return 0
    vocab = model.vocab_size
    positions = 1 if getattr(model, "keeps_logits", False) else batch.input_ids.shape[1]
    if model.task == "seq2seq-lm":  # the decoder's logits at every decoder position
        positions = batch.input_ids.shape[1] - batch.n_source
    return 2 * rows * positions * vocab * 4


def gauss_legendre(n_steps: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre points on [0, 1] and their weights (sum 1), as Captum's default uses."""
    if n_steps < 1:
        raise ValueError("n_steps must be at least 1")
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    alphas = torch.tensor(0.5 * (nodes + 1), dtype=torch.float32, device=device)
    steps = torch.tensor(0.5 * weights, dtype=torch.float32, device=device)
    return alphas, steps


def mask_pads(values: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
    """Zero the padding positions of ``(B, T)`` or ``(B, L, T)`` values."""
    mask = batch.real_mask
    if values.dim() == 3:
        mask = mask.unsqueeze(1)
    return values.masked_fill(~mask, 0.0)

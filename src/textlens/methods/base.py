"""The one interface every attribution method implements, and helpers they share."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
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
    "evaluation_settings": {},
    "test_settings": {},
    "batch_tolerance": {"rtol": 1e-4, "atol": 1e-5},
    "stable_output": "scores",
    "provides": {},
    "corpus_setting": None,
    "layer_totals": "",
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
    n_texts: int, n_steps: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of a batched path: each text repeated over ``n_steps`` Gauss-Legendre points.

    Returns:
        ``(rows, alphas, weights)``, each ``(n_texts * n_steps,)``: the text of every row, its
        point on [0, 1] and its quadrature weight.
    """
    alphas, weights = gauss_legendre(n_steps, device)
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
    with torch.enable_grad():
        leaf = embeds[:, :width].detach().requires_grad_(True)
        out = model.forward(
            leaf, trim(batch, width), rows, hidden_states=target.needs_hidden_states
        )
        values = target.select(out, rows)
        (grad,) = torch.autograd.grad(values.sum(), leaf)
    if width < embeds.shape[1]:
        grad = torch.nn.functional.pad(grad, (0, 0, 0, embeds.shape[1] - width))
    return values.detach(), grad


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
    """Target values ``(N,)`` for rows of embeddings, without gradients, in chunks."""
    parts = []
    with torch.no_grad():
        for piece in chunks(len(rows), internal_batch_size):
            width = width_of(batch, rows[piece])
            out = model.forward(
                embeds[piece, :width],
                trim(batch, width),
                rows[piece],
                hidden_states=target.needs_hidden_states,
            )
            parts.append(target.select(out, rows[piece]))
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

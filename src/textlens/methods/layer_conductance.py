"""Layer conductance for every layer at once: a layer x token matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.errors import TextlensError
from textlens.lazy import torch
from textlens.methods import baseline as baseline_check
from textlens.methods.base import (
    Scores,
    chunks,
    mask_pads,
    path_memory_bytes,
    path_points,
    trim,
    width_of,
)
from textlens.methods.integrated_gradients import BASELINES, BaselineToken, auto_rows
from textlens.methods.registry import register
from textlens.methods.settings import setting
from textlens.targets import BoundTarget

Layers = tuple[int, ...] | Literal["all"] | None
"""The ``layers`` setting: layer numbers, ``"all"``, or None for the method's default."""


def resolve_layers(
    layers: Layers, n_layers: int, default: tuple[int, ...] | None = None
) -> tuple[int, ...]:
    """Layer numbers 1..n_layers (0 = the embedding output).

    ``"all"`` is every layer 1..n_layers; None is ``default`` (every layer when not given).
    """
    if n_layers < 1:
        raise TextlensError("this model exposes no layers to explain")
    if layers == "all" or (layers is None and default is None):
        return tuple(range(1, n_layers + 1))
    if layers is None:
        return default  # type: ignore[return-value]
    chosen = tuple(int(v) for v in layers)
    bad = [v for v in chosen if not 0 <= v <= n_layers]
    if bad or not chosen:
        raise TextlensError(
            f"layer {bad[0] if bad else '()'} is out of range; valid: 0..{n_layers}"
        )
    return chosen


@register
@dataclass(frozen=True)
class LayerConductance:
    """Conductance of each layer's hidden states, for all chosen layers in one pass per path point.

    Along the Integrated Gradients path (Gauss-Legendre points, as Captum's LayerConductance),
    a token's conductance at layer l sums, over its hidden units, the target's gradient with
    respect to the layer output times the change of that output between consecutive points.
    Returns ``(layer, token)`` scores; layer numbers are hidden-state indices (1 = first block).

    Args:
        n_steps: Path points (``n_steps + 1`` evaluations, as Captum).
        baseline: Token that builds the reference input (special tokens kept).
        layers: Layer numbers; None = every layer.
        internal_batch_size: Path points per forward pass; None fits about 4096 tokens a pass.
        keep_units: Also return each hidden unit's conductance in ``extras["unit_scores"]``,
            ``(layer, unit, token)`` per text (for ``textlens.render.layer_boxplot``).

    References:
        Dhamdhere et al., 2018, https://arxiv.org/abs/1805.12233
    """

    name: ClassVar[str] = "layer-conductance"
    backward: ClassVar[bool] = True
    encoder_decoder: ClassVar[bool] = False  # it needs one stack of blocks
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = True
    provides: ClassVar[dict[str, str]] = {"units": "keep_units=True"}
    cost_setting: ClassVar[str] = "n_steps"
    layer_totals: ClassVar[str] = "f(input) - f(baseline)"
    test_settings: ClassVar[dict[str, Any]] = {"n_steps": 8}
    # the first block: closest to the input words
    evaluation_settings: ClassVar[dict[str, Any]] = {"layers": (1,)}
    n_steps: int = setting(50, low=1, cap=300)
    baseline: BaselineToken = "pad"
    layers: Layers = None
    internal_batch_size: int | None = setting(None, low=1)
    keep_units: bool = False

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        rows = auto_rows(batch, self.internal_batch_size)
        return path_memory_bytes(model, batch, self.n_steps, rows, copies=2 * model.n_layers)

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        return (self.n_steps + 2) * len(batch)  # path points and the baseline check

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        baseline_check.announce_fallback(model, self.baseline)
        layers = resolve_layers(self.layers, model.n_layers)
        x = model.embed(batch).detach()
        x0 = model.embed(batch, model.baseline_ids(batch, self.baseline)).detach()
        n, points = len(batch), self.n_steps + 1
        rows, alpha_rows, _ = path_points(n, points, batch.device)
        step_of_row = torch.arange(points, device=batch.device).repeat(n)
        result = torch.zeros((n, len(layers), x.shape[1]), dtype=x.dtype, device=x.device)
        units = None
        carry: tuple[torch.Tensor, ...] | None = None  # (h, g) per layer of the previous row
        for piece in chunks(n * points, auto_rows(batch, self.internal_batch_size)):
            r, a = rows[piece], alpha_rows[piece].view(-1, 1, 1)
            width = width_of(batch, r)
            with torch.enable_grad():
                leaf = (x0[r, :width] + a * (x[r, :width] - x0[r, :width])).requires_grad_(True)
                out = model.forward(leaf, trim(batch, width), r, hidden_states=True)
                states = out.hidden_states
                if len(states) <= max(layers):
                    raise TextlensError(
                        f"the model returned {len(states)} hidden states; layers must be < that"
                    )
                chosen = [states[v] for v in layers]
                values = target.select(out, r)
                grads = torch.autograd.grad(values.sum(), chosen)
            pad = (0, 0, 0, x.shape[1] - width)
            h = torch.nn.functional.pad(
                torch.stack([s.detach().to(x.dtype) for s in chosen], dim=1), pad
            )  # (N, L, T, H), in the embeddings' dtype (float32 for a half-precision model)
            g = torch.nn.functional.pad(torch.stack([v.to(x.dtype) for v in grads], dim=1), pad)
            if carry is not None:
                h = torch.cat([carry[0], h])
                g = torch.cat([carry[1], g])
                r = torch.cat([carry[2], r])
                s = torch.cat([carry[3], step_of_row[piece]])
            else:
                s = step_of_row[piece]
            # pair each row with the next one of the same text: g_s * (h_{s+1} - h_s)
            same = r[1:] == r[:-1]
            per_unit = (g[:-1] * (h[1:] - h[:-1]))[same]  # (pairs, L, T, H)
            result.index_add_(0, r[:-1][same], per_unit.sum(dim=-1))
            if self.keep_units:
                if units is None:
                    units = torch.zeros((n, *per_unit.shape[1:]), dtype=x.dtype, device=x.device)
                units.index_add_(0, r[:-1][same], per_unit)
            carry = (h[-1:], g[-1:], r[-1:], s[-1:])
        values = mask_pads(result, batch)
        extras = baseline_check.report(
            target, baseline_check.predictor(model, batch, target), self.baseline, BASELINES
        )
        if units is None:
            return Scores(values, axes=("batch", "layer", "token"), layers=layers, extras=extras)
        # (batch, layer, unit, token): the token axis last, as token extras want
        mask = batch.real_mask.to(units.dtype)[:, None, None, :]
        return Scores(
            values,
            axes=("batch", "layer", "token"),
            layers=layers,
            extras={"unit_scores": units.transpose(2, 3) * mask, **extras},
            extra_axes={"unit_scores": ("layer", "unit", "token")},
        )

"""Integrated Gradients on the word embeddings, and its per-sub-embedding variant."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.lazy import torch
from textlens.methods import baseline as baseline_check
from textlens.methods.base import (
    BACKWARD_TOKENS,
    Scores,
    capture,
    chunks,
    has_shared_rows,
    path_memory_bytes,
    path_points,
    target_and_grad,
    target_values,
    trim,
    width_of,
)
from textlens.methods.registry import register
from textlens.methods.settings import setting
from textlens.targets import BoundTarget

BaselineToken = Literal["pad", "mask", "unk"]
BASELINES: tuple[str, ...] = get_args(BaselineToken)
TOKEN_BUDGET = 4096
"""Default tokens per forward pass when ``internal_batch_size`` is None (bounds memory)."""


def auto_rows(batch: TokenBatch, internal_batch_size: int | None) -> int:
    """Rows per forward pass: the user's choice, or as many as fit ``TOKEN_BUDGET`` tokens."""
    if internal_batch_size:
        return internal_batch_size
    return max(1, TOKEN_BUDGET // max(1, batch.input_ids.shape[1]))


def shared_pass_rows(
    batch: TokenBatch, internal_batch_size: int | None, distinct: int
) -> tuple[int, int]:
    """Rows per pass of a path whose texts share their forward passes (the output tokens of a
    generated answer, ``distinct`` texts among them), and the distinct inputs such a pass runs.

    With ``internal_batch_size`` given, a pass holds that many rows. Left None, a pass holds
    whole path points, as many as fit ``TOKEN_BUDGET`` tokens of distinct inputs: the rows
    that repeat an input cost no forward pass, so counting them would cut the passes short.
    """
    budget = auto_rows(batch, None)
    if internal_batch_size or budget < distinct:
        rows = auto_rows(batch, internal_batch_size)
        return rows, min(rows, distinct * (-(-rows // len(batch)) + 1))
    points = budget // distinct
    return points * len(batch), points * distinct


@register
@dataclass(frozen=True)
class IntegratedGradients:
    """Integrated Gradients over the word embeddings, all texts and path points batched.

    The baseline replaces every real token by ``baseline`` and keeps special tokens in place, as
    in Captum's BERT tutorial; path points and weights are Gauss-Legendre (Captum's default).
    ``extras["convergence_delta"]`` is sum(attributions) - (f(input) - f(baseline)) per text.

    Args:
        n_steps: Points on the path from baseline to input.
        baseline: Token that builds the reference input.
        internal_batch_size: Path points per forward pass; None fits about 4096 tokens a pass
            (the output tokens of a generated answer share one input per point: it counts once).

    References:
        Sundararajan et al., 2017, https://arxiv.org/abs/1703.01365
    """

    name: ClassVar[str] = "integrated-gradients"
    backward: ClassVar[bool] = True
    reads_positions: ClassVar[bool] = True
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = False
    cost_setting: ClassVar[str] = "n_steps"
    diagnostics: ClassVar[tuple[tuple[str, str], ...]] = (
        ("convergence_delta", "convergence delta"),
        ("target_change", "target change from the baseline"),
    )
    test_settings: ClassVar[dict[str, Any]] = {"n_steps": 8}
    n_steps: int = setting(50, low=1, cap=300)
    baseline: BaselineToken = "pad"
    internal_batch_size: int | None = setting(None, low=1)

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        return (self.n_steps + 3) * len(batch)  # path points, both ends, baseline check

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        baseline_check.announce_fallback(model, self.baseline)
        scores = self.attribute_at(model, batch, target, model.embed(batch))
        warn_if_unconverged(scores.extras, self.n_steps)
        extras = baseline_check.report(
            target, baseline_check.predictor(model, batch, target), self.baseline, BASELINES
        )
        return dataclasses.replace(scores, extras={**scores.extras, **extras})

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        rows = auto_rows(batch, self.internal_batch_size)
        texts = len(torch.unique(batch.input_ids, dim=0))
        if model.causal and texts < len(batch):
            # the rows of a generated answer: a pass keeps its distinct inputs' activations,
            # and the output tokens' gradients run in groups of BACKWARD_TOKENS tokens
            distinct = min(
                shared_pass_rows(batch, self.internal_batch_size, texts)[1], texts * self.n_steps
            )
            rows = distinct + max(distinct, BACKWARD_TOKENS // max(1, batch.input_ids.shape[1]))
        return path_memory_bytes(model, batch, self.n_steps, rows)

    def attribute_at(
        self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget, embeds: torch.Tensor
    ) -> Scores:
        x = embeds.detach()
        x0 = model.embed(batch, model.baseline_ids(batch, self.baseline)).detach()
        n, steps = len(batch), self.n_steps
        by_point = has_shared_rows(batch, target)  # a pass then holds one input many times
        rows, alpha_rows, weight_rows = path_points(n, steps, batch.device, by_point=by_point)
        size = auto_rows(batch, self.internal_batch_size)
        if by_point:
            texts = len(torch.unique(batch.input_ids, dim=0))
            size = shared_pass_rows(batch, self.internal_batch_size, texts)[0]
        grad_sum = torch.zeros_like(x)
        for piece in chunks(n * steps, size):
            r, a = rows[piece], alpha_rows[piece].view(-1, 1, 1)
            scaled = x0[r] + a * (x[r] - x0[r])
            _, grad = target_and_grad(model, batch, target, scaled, r)
            grad_sum.index_add_(0, r, grad * weight_rows[piece].view(-1, 1, 1))
        attributions = (grad_sum * (x - x0)).sum(dim=-1)
        ends = torch.cat([x, x0])
        end_rows = torch.cat([torch.arange(n, device=batch.device)] * 2)
        f = target_values(model, batch, target, ends, end_rows, auto_rows(batch, None))
        change = f[:n] - f[n:]
        delta = attributions.sum(dim=-1) - change
        return Scores(attributions, extras={"convergence_delta": delta, "target_change": change})


class ConvergenceWarning(UserWarning):
    """Integrated gradients' scores do not add up to the target's change."""


DELTA_SHARE = 0.1
"""The largest |convergence delta| accepted without a warning, as a share of |target change|."""


def warn_if_unconverged(extras: dict[str, Any], n_steps: int) -> None:
    """Warn when |sum of scores - (f(input) - f(baseline))| exceeds ``DELTA_SHARE`` of
    |f(input) - f(baseline)| (and 1e-3) for some text: the path integral is too coarse."""
    delta = extras["convergence_delta"].detach().float().abs()
    change = extras["target_change"].detach().float().abs()
    bad = (delta > DELTA_SHARE * change) & (delta > 1e-3)
    if not bool(bad.any()):
        return
    first = int(torch.nonzero(bad).flatten()[0])
    d, c = float(extras["convergence_delta"][first]), float(extras["target_change"][first])
    warnings.warn(
        f"integrated gradients did not converge for {int(bad.sum())} of {len(bad)} text(s): the "
        f"scores add up to {d + c:.3g} but the target changes by {c:.3g} from the baseline "
        f"(delta {d:.3g}); raise n_steps (now {n_steps}) or try another baseline",
        ConvergenceWarning,
        stacklevel=4,
    )


@register
@dataclass(frozen=True)
class EmbeddingIntegratedGradients:
    """Integrated Gradients split over the sub-embeddings: word, position and token type.

    All tables present in the model are moved together along one straight path (as Captum's
    LayerIntegratedGradients over several layers): word ids to ``baseline`` (special tokens
    kept), position ids to 0 and token types to 0, as in Captum's BERT tutorial. The scores are
    the sum of the parts; ``extras`` holds ``word``, ``position`` and ``token_type`` separately.

    Args:
        n_steps: Points on the path.
        baseline: Token that builds the reference word input.
        internal_batch_size: Path points per forward pass; None fits about 4096 tokens a pass.
    """

    name: ClassVar[str] = "embedding-integrated-gradients"
    backward: ClassVar[bool] = True
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = False
    provides: ClassVar[dict[str, str]] = {"parts": ""}
    cost_setting: ClassVar[str] = "n_steps"
    test_settings: ClassVar[dict[str, Any]] = {"n_steps": 8}
    n_steps: int = setting(50, low=1, cap=300)
    baseline: BaselineToken = "pad"
    internal_batch_size: int | None = setting(None, low=1)

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        rows = auto_rows(batch, self.internal_batch_size)
        return path_memory_bytes(model, batch, self.n_steps, rows, copies=9)

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        return (self.n_steps + 3) * len(batch)  # path points, both ends, baseline check

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        baseline_check.announce_fallback(model, self.baseline)
        tables = model.sub_embeddings()
        others = {k: m for k, m in tables.items() if k != "word"}
        x = model.embed(batch).detach()
        x0 = model.embed(batch, model.baseline_ids(batch, self.baseline)).detach()
        inputs: dict[str, torch.Tensor] = {"word": x}
        refs: dict[str, torch.Tensor] = {"word": x0}
        for kind, module in others.items():
            seen: dict[str, Any] = {}
            with torch.no_grad(), capture(module, seen):
                model.forward(x, batch)
            ids, out = seen["input"], seen["output"]
            reference_id = getattr(module, "padding_idx", None) or 0
            with torch.no_grad():
                ref = module(torch.full_like(ids, reference_id))
            inputs[kind] = out.detach().float().expand(len(batch), *out.shape[1:])
            refs[kind] = ref.detach().float().expand(len(batch), *ref.shape[1:])
        n, steps = len(batch), self.n_steps
        rows, alpha_rows, weight_rows = path_points(n, steps, batch.device)
        grad_sums = {k: torch.zeros_like(v) for k, v in inputs.items()}
        for piece in chunks(n * steps, auto_rows(batch, self.internal_batch_size)):
            r, a = rows[piece], alpha_rows[piece].view(-1, 1, 1)
            w = width_of(batch, r)
            leaves = {
                k: (refs[k][r, :w] + a * (inputs[k][r, :w] - refs[k][r, :w])).requires_grad_(True)
                for k in inputs
            }
            with (
                torch.enable_grad(),
                model.override_embeddings({k: v for k, v in leaves.items() if k != "word"}),
            ):
                out = model.forward(
                    leaves["word"], trim(batch, w), r, hidden_states=target.needs_hidden_states
                )
                values = target.select(out, r)
                grads = torch.autograd.grad(values.sum(), list(leaves.values()))
            for k, g in zip(leaves, grads, strict=True):
                grad_sums[k][:, :w].index_add_(0, r, g * weight_rows[piece].view(-1, 1, 1))
        mask = batch.real_mask
        parts = {
            k: ((grad_sums[k] * (inputs[k] - refs[k])).sum(dim=-1)).masked_fill(~mask, 0.0)
            for k in inputs
        }
        total = torch.stack(list(parts.values())).sum(dim=0)

        def predict(token: str) -> Any:  # every table at its reference, words at ``token``
            with torch.no_grad(), model.override_embeddings({k: refs[k] for k in others}):
                start = model.embed(batch, model.baseline_ids(batch, token))
                return model.forward(start, batch, hidden_states=target.needs_hidden_states)

        seen_at_start = baseline_check.report(target, predict, self.baseline, BASELINES)
        return Scores(
            total,
            extras={**parts, **seen_at_start},
            extra_axes={k: ("token",) for k in parts},
            parts=tuple(parts),
        )

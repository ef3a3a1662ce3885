"""Plain gradients: saliency (the gradient's L2 norm per token) and gradient x input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.lazy import torch
from textlens.methods.base import Scores, gradient_memory_bytes, mask_pads, target_and_grad
from textlens.methods.registry import register
from textlens.targets import BoundTarget


def embedding_gradient(
    model: ModelAdapter, batch: TokenBatch, target: BoundTarget, embeds: torch.Tensor
) -> torch.Tensor:
    """The target's gradient with respect to every token's embedding, ``(B, T, K)``."""
    rows = torch.arange(len(batch), device=batch.device)
    return target_and_grad(model, batch, target, embeds, rows)[1]


@register
@dataclass(frozen=True)
class Gradient:
    """Saliency: the L2 norm of the target's gradient with respect to each token's embedding.

    References:
        Simonyan et al., 2014, https://arxiv.org/abs/1312.6034
    """

    name: ClassVar[str] = "gradient"
    backward: ClassVar[bool] = True
    reads_positions: ClassVar[bool] = True
    signed: ClassVar[bool] = False
    layered: ClassVar[bool] = False
    score_label: ClassVar[str] = "gradient norm (higher = more important)"
    unit_reduce: ClassVar[str] = "l2"  # the norm of the gradient over all of a unit's pieces

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        return len(batch)

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        return gradient_memory_bytes(model, batch)

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        return self.attribute_at(model, batch, target, model.embed(batch))

    def attribute_at(
        self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget, embeds: torch.Tensor
    ) -> Scores:
        grad = embedding_gradient(model, batch, target, embeds)
        return Scores(mask_pads(grad.norm(dim=-1), batch))


@register
@dataclass(frozen=True)
class GradientXInput:
    """Gradient x input: the dot product of each token's embedding with its gradient.

    References:
        Shrikumar et al., 2016, https://arxiv.org/abs/1605.01713
    """

    name: ClassVar[str] = "gradient-x-input"
    backward: ClassVar[bool] = True
    reads_positions: ClassVar[bool] = True
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = False

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        return len(batch)

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        return gradient_memory_bytes(model, batch)

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        return self.attribute_at(model, batch, target, model.embed(batch))

    def attribute_at(
        self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget, embeds: torch.Tensor
    ) -> Scores:
        grad = embedding_gradient(model, batch, target, embeds)
        return Scores(mask_pads((grad * embeds).sum(dim=-1), batch))

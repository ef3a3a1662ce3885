"""Attention weights per layer, averaged over heads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.errors import TextlensError
from textlens.lazy import torch
from textlens.methods.base import Scores, forward_memory_bytes, mask_pads
from textlens.methods.layer_conductance import Layers, resolve_layers
from textlens.methods.registry import register
from textlens.targets import BoundTarget


@register
@dataclass(frozen=True)
class Attention:
    """Attention paid to each token, per layer, averaged over heads.

    Args:
        query: Whose attention is read: ``auto`` (the first token, e.g. [CLS], for encoders;
            the last real token for decoders), ``first``, ``last``, or ``mean`` over all real
            tokens.
        layers: Layer numbers 1..n_layers; None = every layer.
    """

    name: ClassVar[str] = "attention"
    signed: ClassVar[bool] = False
    layered: ClassVar[bool] = True
    score_label: ClassVar[str] = "attention weight (mean over heads)"
    query: Literal["auto", "first", "last", "mean"] = "auto"
    layers: Layers = None

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        return len(batch)

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        n, width = batch.input_ids.shape
        heads = model.attention_heads
        if getattr(model, "attention_in_rows", False):  # a few rows at a time, per layer
            from textlens.adapters.attention_rows import CHUNK

            rows = min(width, CHUNK) if self._query(model) == "mean" else 1
            chunk = 3 * n * heads * rows * width * 4
            return (
                chunk
                + n * max(1, model.n_layers) * width * 4
                + forward_memory_bytes(model, batch, n)
            )
        maps = n * max(1, model.n_layers) * (heads + 1) * width * width * 4  # kept, averaged
        return maps + forward_memory_bytes(model, batch, n)

    def _query(self, model: ModelAdapter) -> str:
        if self.query == "auto":
            return "last" if model.causal else "first"
        return self.query

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        layers = resolve_layers(self.layers, model.n_layers)
        if 0 in layers:
            raise TextlensError("attention starts at layer 1 (layer 0 is the embedding output)")
        query = self._query(model)
        read = getattr(model, "attention_rows", None)
        if read is not None and getattr(model, "attention_in_rows", False):
            positions, weights = _queries(batch, query)
            rows = read(model.embed(batch), batch, positions, weights)
            if rows is not None:
                values = torch.stack([rows[v - 1] for v in layers], dim=1)  # (B, L, T)
                return Scores(
                    mask_pads(values, batch), axes=("batch", "layer", "token"), layers=layers
                )
        with torch.no_grad(), model.eager_attention():
            out = model.forward(model.embed(batch), batch, attentions=True)
        maps = getattr(out, "attentions", None)
        if not maps:
            raise TextlensError("this model returns no attention weights")
        stacked = torch.stack([maps[v - 1].mean(dim=1) for v in layers], dim=1)  # (B, L, T, T)
        if query == "first":
            values = stacked[:, :, 0, :]
        elif query == "last":
            last = (
                (batch.lengths - 1).view(-1, 1, 1, 1).expand(-1, len(layers), 1, stacked.shape[-1])
            )
            values = stacked.gather(2, last).squeeze(2)
        else:
            weights = batch.real_mask.to(stacked.dtype).view(len(batch), 1, -1, 1)
            values = (stacked * weights).sum(dim=2) / weights.sum(dim=2)
        return Scores(mask_pads(values, batch), axes=("batch", "layer", "token"), layers=layers)


def _queries(batch: TokenBatch, query: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The query positions ``(B, Q)`` whose attention is read, and each one's weight."""
    n, width = batch.input_ids.shape
    device = batch.input_ids.device
    if query == "first":
        return torch.zeros(n, 1, dtype=torch.long, device=device), torch.ones(n, 1, device=device)
    if query == "last":
        return (batch.lengths - 1).view(-1, 1).to(device), torch.ones(n, 1, device=device)
    real = batch.real_mask.float()
    positions = torch.arange(width, device=device).expand(n, width)
    return positions, real / real.sum(dim=1, keepdim=True).clamp(min=1)

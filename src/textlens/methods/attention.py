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
        maps = n * max(1, model.n_layers) * (heads + 1) * width * width * 4  # kept, averaged
        return maps + forward_memory_bytes(model, batch, n)

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        layers = resolve_layers(self.layers, model.n_layers)
        if 0 in layers:
            raise TextlensError("attention starts at layer 1 (layer 0 is the embedding output)")
        with torch.no_grad(), model.eager_attention():
            out = model.forward(model.embed(batch), batch, attentions=True)
        maps = getattr(out, "attentions", None)
        if not maps:
            raise TextlensError("this model returns no attention weights")
        stacked = torch.stack([maps[v - 1].mean(dim=1) for v in layers], dim=1)  # (B, L, T, T)
        query = self.query
        if query == "auto":
            query = "last" if model.causal else "first"
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

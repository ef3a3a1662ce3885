"""Attention weights read a few query rows at a time, never a whole map.

A model that takes its attention from transformers' registry (``_supports_attention_backend``)
runs, within ``reading_rows``, an attention that computes its output with PyTorch's fused
attention (which keeps no ``T x T`` map) and, beside it, the softmax of the chosen query
positions only, averaged over heads, in chunks of ``CHUNK`` queries. Each layer's rows are
reduced at once, so a long text costs ``heads x CHUNK x T`` numbers at a time instead of
``layers x heads x T x T``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from textlens.lazy import torch

NAME = "textlens-attention-rows"
"""The attention implementation registered with transformers (used only inside
``reading_rows``)."""
CHUNK = 256
"""Query positions whose weights are computed at once."""
_local = threading.local()
_registered = threading.Lock()


def supported(model: Any) -> bool:
    """Whether ``model`` (a transformers model) takes its attention from the registry."""
    return bool(getattr(type(model), "_supports_attention_backend", False))


def _register() -> None:
    with _registered:
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
        from transformers.modeling_utils import AttentionInterface

        if NAME not in AttentionInterface._global_mapping:
            AttentionInterface.register(NAME, _attention)
            AttentionMaskInterface.register(NAME, sdpa_mask)


def _attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Fused attention for the output; the chosen rows' weights go to the current reader."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out = sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )
    reader = getattr(_local, "reader", None)
    if reader is not None:
        reader.read(module, query, key, attention_mask, scaling)
    return out


class _Reader:
    """Collects each layer's head-averaged weights from ``positions`` ``(B, Q)``, summed with
    ``weights`` ``(B, Q)``, as ``(B, T)`` per layer in call order."""

    def __init__(self, positions: torch.Tensor, weights: torch.Tensor, real: torch.Tensor) -> None:
        self.positions = positions
        self.weights = weights
        self.real = real
        self.layers: list[torch.Tensor] = []

    def read(
        self,
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        attention_mask: torch.Tensor | None,
        scaling: float | None,
    ) -> None:
        groups = int(getattr(module, "num_key_value_groups", 1) or 1)
        if groups > 1:
            key = key.repeat_interleave(groups, dim=1)
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        n, heads, _, depth = query.shape
        width = key.shape[2]
        keys = key.float().transpose(-1, -2)
        causal = bool(getattr(module, "is_causal", False))
        columns = torch.arange(width, device=query.device)
        total = torch.zeros(n, width, device=query.device)
        for start in range(0, self.positions.shape[1], CHUNK):
            at = self.positions[:, start : start + CHUNK]  # (B, Q)
            q = query.gather(2, at[:, None, :, None].expand(n, heads, at.shape[1], depth))
            scores = torch.matmul(q.float(), keys) * scale  # (B, H, Q, T)
            if attention_mask is not None:
                rows = attention_mask.expand(n, -1, -1, -1)[:, :1]
                rows = rows.gather(2, at[:, None, :, None].expand(n, 1, at.shape[1], width))
                if rows.dtype == torch.bool:
                    scores = scores.masked_fill(~rows, float("-inf"))
                else:
                    scores = scores + rows.float()
            else:
                allowed = self.real[:, None, None, :width].bool()
                if causal:
                    allowed = allowed & (columns[None, None, None, :] <= at[:, None, :, None])
                scores = scores.masked_fill(~allowed, float("-inf"))
            weights = torch.nan_to_num(scores.softmax(-1), nan=0.0).mean(dim=1)  # (B, Q, T)
            total += (weights * self.weights[:, start : start + CHUNK, None]).sum(dim=1)
        self.layers.append(total)


@contextlib.contextmanager
def reading_rows(
    model: Any, positions: torch.Tensor, weights: torch.Tensor, real: torch.Tensor
) -> Iterator[list[torch.Tensor]]:
    """Within the block, each attention layer of ``model`` adds its head-averaged weights from
    query ``positions`` ``(B, Q)``, summed with ``weights``, to the yielded list (one ``(B, T)``
    tensor a layer, in order). ``real`` ``(B, T)`` marks the real tokens (for a model that
    passes no mask)."""
    _register()
    configs = {id(m.config): m.config for m in model.modules() if hasattr(m, "config")}
    kept = [(config, config._attn_implementation) for config in configs.values()]
    reader = _Reader(positions, weights, real)
    previous = getattr(_local, "reader", None)
    try:
        for config, _ in kept:
            config._attn_implementation = NAME
        _local.reader = reader
        yield reader.layers
    finally:
        _local.reader = previous
        for config, implementation in kept:
            config._attn_implementation = implementation

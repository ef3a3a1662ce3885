"""Occlusion (leave-one-out): how much the target drops when one token is replaced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.lazy import torch
from textlens.methods import baseline as baseline_check
from textlens.methods.base import Scores, forward_memory_bytes, target_values
from textlens.methods.integrated_gradients import auto_rows
from textlens.methods.registry import register
from textlens.methods.settings import setting
from textlens.targets import BoundTarget


@register
@dataclass(frozen=True)
class Occlusion:
    """Leave-one-out: f(text) - f(text with token i replaced), for every real token, batched.

    Special tokens are never replaced and score 0.

    Args:
        replacement: Token put in place of the occluded one (``mask`` falls back to ``pad`` for
            models without a mask token, with a ``BaselineWarning`` that says so).
        internal_batch_size: Occluded copies per forward pass; None fits about 4096 tokens.

    References:
        Zeiler & Fergus, 2014; Li et al., 2016, https://arxiv.org/abs/1612.08220
    """

    name: ClassVar[str] = "occlusion"
    reads_positions: ClassVar[bool] = True
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = False
    replacement: Literal["mask", "pad", "unk"] = "mask"
    internal_batch_size: int | None = setting(None, low=1)

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        candidates = batch.real_mask & ~batch.special_mask
        return len(batch) + int(candidates.sum())  # the clean texts, then one copy a token

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        rows, width = self.passes(model, batch), batch.input_ids.shape[1]
        # every copy's ids and embeddings, and the two copies that finding the copies alike
        # (the rows of an answer share them) makes of the embeddings
        copies = rows * width * (3 * model.embed_dim * 4 + 8)
        per_pass = min(rows, auto_rows(batch, self.internal_batch_size))
        return copies + forward_memory_bytes(model, batch, per_pass)

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        n = len(batch)
        candidates = batch.real_mask & ~batch.special_mask
        text_idx, pos_idx = candidates.nonzero(as_tuple=True)
        ids = batch.input_ids[text_idx].clone()
        baseline_check.announce_fallback(model, self.replacement, "replacement")
        fill = model.special_token_id(self.replacement)
        ids[torch.arange(len(text_idx), device=ids.device), pos_idx] = fill
        all_rows = torch.cat([torch.arange(n, device=batch.device), text_idx])
        embeds = model.embed(batch, torch.cat([batch.input_ids, ids])).detach()
        f = target_values(
            model, batch, target, embeds, all_rows, auto_rows(batch, self.internal_batch_size)
        )
        clean, occluded = f[:n], f[n:]
        values = torch.zeros(batch.input_ids.shape, dtype=f.dtype, device=f.device)
        values[text_idx, pos_idx] = clean[text_idx] - occluded
        return Scores(values)

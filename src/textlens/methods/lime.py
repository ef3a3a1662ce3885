"""LIME: a weighted linear model of the target over which words are kept (Ribeiro et al., 2016).

The features are words (sub-words joined by their character offsets); a word is removed by
putting the mask (or pad) token in place of all its pieces. The coalition helpers here are
shared with ``kernel-shap``, which differs only in how coalitions are drawn and weighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.explanation import word_groups
from textlens.lazy import torch
from textlens.methods import baseline as baseline_check
from textlens.methods.base import Scores, target_values
from textlens.methods.integrated_gradients import auto_rows
from textlens.methods.registry import register
from textlens.methods.settings import setting
from textlens.targets import BoundTarget

Replacement = Literal["mask", "pad", "unk"]


def batch_words(batch: TokenBatch) -> list[list[list[int]]]:
    """For every text of the batch, the token indices of each of its words."""
    special = batch.special_mask.tolist()
    return [
        word_groups(batch.texts[b], batch.offsets[b], special[b][: len(batch.tokens[b])])
        for b in range(len(batch))
    ]


def coalition_values(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    words: list[list[list[int]]],
    masks: list[np.ndarray],
    replacement: str,
    internal_batch_size: int | None,
) -> list[np.ndarray]:
    """The target for every coalition of every text: ``masks[b]`` is ``(M_b, W_b)``, 1 = kept.

    All coalitions of all texts run batched (in chunks of about 4096 tokens, or
    ``internal_batch_size`` rows).
    """
    baseline_check.announce_fallback(model, replacement, "replacement")
    fill = model.special_token_id(replacement)
    ids, rows = [], []
    for b, (groups, mask) in enumerate(zip(words, masks, strict=True)):
        base = batch.input_ids[b]
        for z in mask:
            variant = base.clone()
            for kept, group in zip(z, groups, strict=True):
                if not kept:
                    variant[group] = fill
            ids.append(variant)
            rows.append(b)
    row_index = torch.tensor(rows, dtype=torch.long, device=batch.device)
    embeds = model.embed(batch, torch.stack(ids)).detach()
    values = target_values(
        model, batch, target, embeds, row_index, auto_rows(batch, internal_batch_size)
    )
    values = values.double().cpu().numpy()
    out, start = [], 0
    for mask in masks:
        out.append(values[start : start + len(mask)])
        start += len(mask)
    return out


def coalition_memory_bytes(
    model: ModelAdapter, batch: TokenBatch, n_samples: int, internal_batch_size: int | None
) -> int:
    """Rough peak memory of the coalitions: their ids, and one forward pass of them."""
    n, width = batch.input_ids.shape
    rows = min(auto_rows(batch, internal_batch_size), n * n_samples)
    return model.activation_bytes(rows, width) // 3 + n * n_samples * width * 8


def weighted_linear_fit(
    z: np.ndarray, y: np.ndarray, weights: np.ndarray, ridge: float = 0.0
) -> np.ndarray:
    """Coefficients (no intercept) of ``y ~ intercept + z @ coef`` by weighted least squares."""
    design = np.hstack([np.ones((len(z), 1)), z])
    w = np.sqrt(weights)[:, None]
    penalty = np.sqrt(ridge) * np.eye(design.shape[1])[1:]
    a = np.vstack([design * w, penalty])
    b = np.concatenate([y * w[:, 0], np.zeros(len(penalty))])
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return coef[1:]


def spread_to_tokens(
    batch: TokenBatch, words: list[list[list[int]]], coefs: list[np.ndarray]
) -> torch.Tensor:
    """Token scores ``(B, T)``: each word's coefficient split evenly over its pieces.

    So ``to_words("sum")`` gives back the word's coefficient; special tokens and padding get 0.
    """
    values = torch.zeros(batch.input_ids.shape, dtype=torch.float32, device=batch.device)
    for b, (groups, coef) in enumerate(zip(words, coefs, strict=True)):
        for group, c in zip(groups, coef, strict=True):
            values[b, group] = float(c) / len(group)
    return values


@register
@dataclass(frozen=True)
class Lime:
    """LIME over words: a locally weighted linear model of the target on kept/removed words.

    Each text gets ``n_samples`` random coalitions of its words (each word kept with
    probability 1/2, plus the whole text), drawn from its own generator seeded with ``seed``;
    removed words are replaced by ``replacement``. The coalitions are weighted by
    exp(-d^2 / kernel_width^2), d the cosine distance to the whole text, and a weighted ridge
    regression gives each word's score (split evenly over its sub-word pieces).

    Args:
        n_samples: Coalitions per text.
        kernel_width: Width of the similarity kernel on the cosine distance.
        ridge: L2 penalty of the linear model.
        replacement: Token that replaces a removed word's pieces.
        internal_batch_size: Coalitions per forward pass; None fits about 4096 tokens.
        seed: Seeds the coalitions.

    References:
        Ribeiro et al., 2016, https://arxiv.org/abs/1602.04938
    """

    name: ClassVar[str] = "lime"
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = False
    score_label: ClassVar[str] = "linear-model weight (+ for target)"
    cost_setting: ClassVar[str] = "n_samples"
    test_settings: ClassVar[dict[str, Any]] = {"n_samples": 32}
    n_samples: int = setting(200, low=2, cap=5000)
    kernel_width: float = setting(0.25, low=0, low_open=True)
    ridge: float = setting(1e-3, low=0)
    replacement: Replacement = "mask"
    internal_batch_size: int | None = setting(None, low=1)
    seed: int = 0

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        return coalition_memory_bytes(model, batch, self.n_samples, self.internal_batch_size)

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        return (self.n_samples + 1) * len(batch)

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        words = batch_words(batch)
        masks = [self._coalitions(len(groups)) for groups in words]
        values = coalition_values(
            model, batch, target, words, masks, self.replacement, self.internal_batch_size
        )
        coefs = []
        for mask, y in zip(masks, values, strict=True):
            kept = mask.sum(axis=1)
            cosine = kept / np.sqrt(max(1, mask.shape[1]) * np.maximum(kept, 1e-12))
            weights = np.exp(-((1 - cosine) ** 2) / self.kernel_width**2)
            coefs.append(weighted_linear_fit(mask, y, weights, self.ridge))
        return Scores(spread_to_tokens(batch, words, coefs))

    def _coalitions(self, n_words: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        draws = rng.random((self.n_samples - 1, n_words)) < 0.5
        return np.vstack([np.ones((1, n_words)), draws]).astype(np.float64)

"""Kernel SHAP over words: Shapley values estimated by a weighted linear model (Lundberg & Lee).

Same word features, removal and batching as ``lime``; the coalitions are weighted by the
Shapley kernel, so the linear model's weights are the words' Shapley values. A text with few
enough words to enumerate every coalition within ``n_samples`` gets them exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.methods.base import Scores
from textlens.methods.lime import (
    Replacement,
    batch_words,
    coalition_memory_bytes,
    coalition_values,
    spread_to_tokens,
    weighted_linear_fit,
)
from textlens.methods.registry import register
from textlens.methods.settings import setting
from textlens.targets import BoundTarget

ENDS_WEIGHT = 1e6
"""Weight of the empty and the full coalition (infinite in theory: the fit must pass them)."""


def shapley_kernel(sizes: np.ndarray, n_words: int) -> np.ndarray:
    """The Shapley kernel weight of coalitions with ``sizes`` kept words out of ``n_words``."""
    weights = np.full(len(sizes), ENDS_WEIGHT)
    inner = (sizes > 0) & (sizes < n_words)
    k = sizes[inner]
    binom = np.array([math.comb(n_words, int(v)) for v in k], dtype=np.float64)
    weights[inner] = (n_words - 1) / (binom * k * (n_words - k))
    return weights


def exact_coalitions(n_words: int, limit: int) -> np.ndarray | None:
    """Every coalition of ``n_words`` words, when there are at most ``limit``; else None."""
    if 2**n_words > limit:
        return None
    grid = (np.arange(2**n_words)[:, None] >> np.arange(n_words)) & 1
    return grid.astype(np.float64)


@register
@dataclass(frozen=True)
class KernelShap:
    """Kernel SHAP over words: each word's Shapley value for the target, by a weighted fit.

    Each text gets the empty and the full coalition and ``n_samples - 2`` random ones (the
    number of kept words drawn from the Shapley kernel's distribution over sizes, then the
    words uniformly), from its own generator seeded with ``seed``; when every coalition fits in
    ``n_samples`` they are all used and the values are exact. Removed words are replaced by
    ``replacement``. The scores add up to f(text) - f(every word removed).

    Args:
        n_samples: Coalitions per text.
        replacement: Token that replaces a removed word's pieces.
        internal_batch_size: Coalitions per forward pass; None fits about 4096 tokens.
        seed: Seeds the coalitions.

    References:
        Lundberg & Lee, 2017, https://arxiv.org/abs/1705.07874
    """

    name: ClassVar[str] = "kernel-shap"
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = False
    score_label: ClassVar[str] = "Shapley value (+ for target)"
    cost_setting: ClassVar[str] = "n_samples"
    test_settings: ClassVar[dict[str, Any]] = {"n_samples": 32}
    n_samples: int = setting(200, low=4, cap=5000)
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
        drawn = [self._coalitions(len(groups)) for groups in words]
        masks = [mask for mask, _ in drawn]
        values = coalition_values(
            model, batch, target, words, masks, self.replacement, self.internal_batch_size
        )
        coefs = [
            weighted_linear_fit(mask, y, weights)
            for (mask, weights), y in zip(drawn, values, strict=True)
        ]
        return Scores(spread_to_tokens(batch, words, coefs))

    def _coalitions(self, n_words: int) -> tuple[np.ndarray, np.ndarray]:
        """Coalitions ``(M, W)`` and their regression weights.

        Enumerated coalitions carry the Shapley kernel; sampled ones were drawn in proportion to
        it, so they weigh 1 each (the empty and full coalitions keep their large weight).
        """
        exact = exact_coalitions(n_words, self.n_samples)
        if exact is not None:
            return exact, shapley_kernel(exact.sum(axis=1), n_words)
        rng = np.random.default_rng(self.seed)
        sizes = np.arange(1, n_words)
        p = (n_words - 1) / (sizes * (n_words - sizes))
        drawn = rng.choice(sizes, size=self.n_samples - 2, p=p / p.sum())
        rows = [np.zeros(n_words), np.ones(n_words)]
        for k in drawn:
            z = np.zeros(n_words)
            z[rng.choice(n_words, size=int(k), replace=False)] = 1.0
            rows.append(z)
        weights = np.ones(len(rows))
        weights[:2] = ENDS_WEIGHT
        return np.vstack(rows), weights

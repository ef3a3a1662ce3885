"""Fixed explanations (no model) for the renderer tests."""

from __future__ import annotations

import numpy as np
import pytest

from textlens.explanation import Explanation, TargetInfo

TEXT = 'A <b>"gripping"</b> film & more'


def make_flat() -> Explanation:
    """A signed, token-level explanation whose text holds markup, quotes and an ampersand."""
    tokens = ["[CLS]", "a", "<", "b", ">", '"', "gripping", '"', "film", "&", "more", "[SEP]"]
    offsets = [(0, 0), (0, 1), (2, 3), (3, 4), (4, 5), (5, 6), (6, 14), (14, 15)]
    offsets += [(20, 24), (25, 26), (27, 31), (0, 0)]
    # "</b>" (15..19) is left out of the tokens on purpose: gaps are copied as written
    scores = [0.9, 0.1, -0.05, 0.0, 0.02, 0.0, 0.8, 0.0, -0.4, 0.01, 0.2, -0.7]
    return Explanation(
        text=TEXT,
        tokens=tokens,
        offsets=offsets,
        special=[True] + [False] * 10 + [True],
        scores=scores,
        method="integrated-gradients",
        signed=True,
        params={"n_steps": 50, "baseline": "pad"},
        target=TargetInfo(kind="class", label="fresh", index=1, score=2.5, probability=0.92),
        model="tiny",
        extras={"convergence_delta": np.float64(1e-4)},
    )


def make_layered() -> Explanation:
    """An unsigned layer x token explanation (4 layers, 6 tokens) with a gradient pattern."""
    tokens = ["[CLS]", "not", "a", "good", "film", "[SEP]"]
    offsets = [(0, 0), (0, 3), (4, 5), (6, 10), (11, 15), (0, 0)]
    rng = np.random.default_rng(0)
    scores = np.outer(np.arange(1, 5), [0.2, 1.0, 0.1, 2.0, 0.5, 0.2]) + rng.normal(0, 0.01, (4, 6))
    return Explanation(
        text="not a good film",
        tokens=tokens,
        offsets=offsets,
        special=[True, False, False, False, False, True],
        scores=scores.round(4),
        axes=("layer", "token"),
        layers=(1, 2, 3, 4),
        method="information-loss",
        signed=False,
        params={"rate": 0.1},
        target=TargetInfo(kind="hidden-state", label=None, index=None, score=0.0),
        model="tiny",
        extras={"sigma": np.exp(-scores.round(4))},
    )


@pytest.fixture
def flat() -> Explanation:
    return make_flat()


@pytest.fixture
def layered() -> Explanation:
    return make_layered()

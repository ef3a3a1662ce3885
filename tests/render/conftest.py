"""Fixed explanations (no model) for the renderer tests."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

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
        extras={"sigma": np.exp(-scores.round(4)), "steps": np.array([6, 7, 8, 9])},
        extra_axes={"sigma": ("layer", "token"), "steps": ("layer",)},
    )


@pytest.fixture
def flat() -> Explanation:
    return make_flat()


@pytest.fixture
def layered() -> Explanation:
    return make_layered()


GOLDEN = Path(__file__).parent.parent / "golden"
RELATIVE = 1e-6
"""Golden numbers match within this relative difference (float32 results, any CPU)."""
_NUMBER = re.compile(r"#[0-9a-fA-F]{6}\b|[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def same_numbers(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=RELATIVE, abs_tol=1e-12)


def compare_json(actual: object, expected: object, where: str = "$") -> None:
    """Structure and strings exactly, numbers within ``RELATIVE``; raises AssertionError."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object"
        assert sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual)}"
        for key in expected:
            compare_json(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list"
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, not {len(expected)}"
        for i, (x, y) in enumerate(zip(actual, expected, strict=True)):
            compare_json(x, y, f"{where}[{i}]")
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
    else:
        ok = isinstance(actual, int | float) and not isinstance(actual, bool)
        assert ok and same_numbers(float(actual), float(expected)), (
            f"{where}: {actual!r} != {expected!r} (relative tolerance {RELATIVE})"
        )


def compare_text(actual: str, expected: str) -> None:
    """Text exactly, except numbers (within ``RELATIVE``) and #rrggbb colours (1 per channel)."""
    got, want = _NUMBER.split(actual), _NUMBER.split(expected)
    assert got == want, "the text around the numbers changed"
    for x, y in zip(_NUMBER.findall(actual), _NUMBER.findall(expected), strict=True):
        if y.startswith("#"):
            assert x.startswith("#"), f"{x!r} != {y!r}"
            channels = [abs(int(x[i : i + 2], 16) - int(y[i : i + 2], 16)) for i in (1, 3, 5)]
            assert max(channels) <= 1, f"colour {x} != {y}"
        else:
            assert same_numbers(float(x), float(y)), f"{x} != {y} (relative {RELATIVE})"


def check_golden(name: str, actual: str) -> None:
    """Compare with ``tests/golden/NAME`` (JSON by value, other text as ``compare_text``).

    ``TEXTLENS_UPDATE_GOLDEN=1`` rewrites the file instead.
    """
    path = GOLDEN / name
    if os.environ.get("TEXTLENS_UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if name.endswith(".json"):
        compare_json(json.loads(actual), json.loads(expected))
    else:
        compare_text(actual, expected)


@pytest.fixture
def golden():
    """``golden(name, actual)``: check ``actual`` against a golden file (see check_golden)."""
    return check_golden

"""Contract over the registry: every method, the same promises."""

import dataclasses
import json

import numpy as np
import pytest

from conftest import SENTENCES
from textlens import METHODS, Explanation, explain, explain_many, get_method
from textlens.methods.base import describe


def fast(method):
    """The cheap settings the method declares for tests."""
    return describe(METHODS[method], "test_settings")


@pytest.fixture(params=sorted(METHODS))
def method(request):
    return request.param


def test_shapes_match_tokens_and_are_finite(tiny_bert, method):
    for exp in explain_many(SENTENCES, tiny_bert, method, **fast(method)):
        assert exp.scores.shape[-1] == len(exp.tokens) == len(exp.offsets)
        assert exp.layered == METHODS[method].layered
        assert np.isfinite(exp.scores).all()
        assert exp.method == method
        assert exp.signed == get_method(method, **fast(method)).signed


def test_batched_equals_one_at_a_time(tiny_bert, method):
    params = fast(method)
    together = explain_many(SENTENCES, tiny_bert, method, batch_size=8, **params)
    tol = describe(METHODS[method], "batch_tolerance")
    output = describe(METHODS[method], "stable_output")  # e.g. sigma, where scores are -log sigma
    for text, exp in zip(SENTENCES, together, strict=True):
        alone = explain(text, tiny_bert, method, **params)
        if output == "scores":
            np.testing.assert_allclose(exp.scores, alone.scores, **tol)
        else:
            np.testing.assert_allclose(exp.extras[output], alone.extras[output], **tol)


def test_same_seed_same_result(tiny_bert, method):
    params = fast(method)
    a = explain(SENTENCES[2], tiny_bert, method, **params)
    b = explain(SENTENCES[2], tiny_bert, method, **params)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_json_round_trip(tiny_bert, method):
    exp = explain(SENTENCES[0], tiny_bert, method, **fast(method))
    back = Explanation.from_json(exp.to_json())
    assert back.to_dict() == exp.to_dict()
    assert json.loads(exp.to_json())["schema"] == "textlens.explanation/1"
    np.testing.assert_array_equal(back.scores, exp.scores)


def test_explanation_is_read_only(tiny_bert, method):
    exp = explain(SENTENCES[0], tiny_bert, method, **fast(method))
    with pytest.raises(ValueError):
        exp.scores[..., 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.method = "other"


def test_padding_positions_never_leak(tiny_bert, method):
    short, long = explain_many(SENTENCES[1:3], tiny_bert, method, **fast(method))
    assert len(short.tokens) < len(long.tokens)
    assert short.scores.shape[-1] == len(short.tokens)


def test_front_ends_never_name_a_method():
    """The CLI, the server, renderers, the evaluation and jobs read what methods say of
    themselves; none of them names one (so a new method needs no edit there)."""
    import re
    from pathlib import Path

    import textlens

    root = Path(textlens.__file__).parent
    files = [root / "cli.py", root / "jobs.py"]
    for folder in ("server", "render", "evaluate"):
        files += sorted((root / folder).rglob("*.py")) + sorted((root / folder).rglob("*.html"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        for name in METHODS:
            assert not re.search(rf"[\"'`]{re.escape(name)}[\"'`]", text), f"{path.name}: {name}"

"""Contract over the registry: every method, the same promises."""

import dataclasses
import json

import numpy as np
import pytest

from conftest import SENTENCES
from textlens import METHODS, Explanation, explain, explain_many, get_method

FAST = {
    "integrated-gradients": {"n_steps": 8},
    "embedding-integrated-gradients": {"n_steps": 8},
    "layer-conductance": {"n_steps": 8},
    "smoothgrad": {"n_samples": 3, "noise_std": 0.05},
    "information-loss": {"max_steps": 30, "corpus_size": 20},
}
# sampled methods: batched equals one-at-a-time within their own noise (see the information tests)
TOLERANCE = {"information-loss": {"rtol": 0.02, "atol": 0.0}}


@pytest.fixture(params=sorted(METHODS))
def method(request):
    return request.param


def test_shapes_match_tokens_and_are_finite(tiny_bert, method):
    for exp in explain_many(SENTENCES, tiny_bert, method, **FAST.get(method, {})):
        assert exp.scores.shape[-1] == len(exp.tokens) == len(exp.offsets)
        assert exp.layered == METHODS[method].layered
        assert np.isfinite(exp.scores).all()
        assert exp.method == method
        assert exp.signed == get_method(method, **FAST.get(method, {})).signed


def test_batched_equals_one_at_a_time(tiny_bert, method):
    params = FAST.get(method, {})
    together = explain_many(SENTENCES, tiny_bert, method, batch_size=8, **params)
    for text, exp in zip(SENTENCES, together, strict=True):
        alone = explain(text, tiny_bert, method, **params)
        tol = TOLERANCE.get(method, {"atol": 1e-5, "rtol": 1e-4})
        if method == "information-loss":  # scores are -log sigma: compare sigma
            np.testing.assert_allclose(exp.extras["sigma"], alone.extras["sigma"], **tol)
        else:
            np.testing.assert_allclose(exp.scores, alone.scores, **tol)


def test_same_seed_same_result(tiny_bert, method):
    params = FAST.get(method, {})
    a = explain(SENTENCES[2], tiny_bert, method, **params)
    b = explain(SENTENCES[2], tiny_bert, method, **params)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_json_round_trip(tiny_bert, method):
    exp = explain(SENTENCES[0], tiny_bert, method, **FAST.get(method, {}))
    back = Explanation.from_json(exp.to_json())
    assert back.to_dict() == exp.to_dict()
    assert json.loads(exp.to_json())["schema"] == "textlens.explanation/1"
    np.testing.assert_array_equal(back.scores, exp.scores)


def test_explanation_is_read_only(tiny_bert, method):
    exp = explain(SENTENCES[0], tiny_bert, method, **FAST.get(method, {}))
    with pytest.raises(ValueError):
        exp.scores[..., 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.method = "other"


def test_padding_positions_never_leak(tiny_bert, method):
    short, long = explain_many(SENTENCES[1:3], tiny_bert, method, **FAST.get(method, {}))
    assert len(short.tokens) < len(long.tokens)
    assert short.scores.shape[-1] == len(short.tokens)

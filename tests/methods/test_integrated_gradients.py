"""Integrated gradients (and per sub-embedding): known answers."""

import numpy as np

from conftest import SENTENCES
from textlens import explain, explain_many


def test_integrated_gradients_completeness(tiny_bert):
    for exp in explain_many(SENTENCES, tiny_bert, "integrated-gradients", n_steps=50):
        assert abs(float(exp.extras["convergence_delta"])) < 1e-3
        special = np.array(exp.special)
        assert np.all(exp.scores[special] == 0)  # special tokens are kept in the baseline


def test_embedding_ig_parts_add_up(tiny_bert):
    exp = explain(SENTENCES[0], tiny_bert, "embedding-integrated-gradients", n_steps=30)
    parts = sum(exp.extras[k] for k in ("word", "position", "token_type"))
    np.testing.assert_allclose(parts, exp.scores, atol=1e-6)
    assert np.allclose(exp.extras["token_type"], 0)  # one segment: input equals baseline

"""Layer conductance: layer totals and units that add up."""

import numpy as np

from conftest import SENTENCES
from textlens import explain, explain_many


def test_conductance_layer_totals_match_the_ig_total(tiny_bert):
    ig = explain(SENTENCES[0], tiny_bert, "integrated-gradients", n_steps=100)
    cond = explain(SENTENCES[0], tiny_bert, "layer-conductance", n_steps=100)
    totals = cond.scores.sum(axis=-1)
    assert np.allclose(totals, ig.scores.sum(), atol=0.05 * abs(ig.scores.sum()) + 1e-3)


def test_conductance_units_add_up_to_the_token_scores(tiny_bert):
    texts = [SENTENCES[0], SENTENCES[1]]
    plain = explain_many(texts, tiny_bert, "layer-conductance", n_steps=8)
    kept = explain_many(texts, tiny_bert, "layer-conductance", n_steps=8, keep_units=True)
    for a, b in zip(plain, kept, strict=True):
        units = b.extras["unit_scores"]
        assert units.shape == (*b.scores.shape[:1], tiny_bert.model.config.hidden_size, len(b))
        np.testing.assert_allclose(units.sum(axis=1), a.scores, atol=1e-5)
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-6)

"""Known answers: completeness, wrappers that reduce to their base, conductance totals."""

import numpy as np
import pytest

from conftest import SENTENCES
from textlens import explain, explain_many
from textlens.errors import TextlensError


def test_integrated_gradients_completeness(tiny_bert):
    for exp in explain_many(SENTENCES, tiny_bert, "integrated-gradients", n_steps=50):
        assert abs(float(exp.extras["convergence_delta"])) < 1e-3
        special = np.array(exp.special)
        assert np.all(exp.scores[special] == 0)  # special tokens are kept in the baseline


def test_smoothgrad_without_noise_equals_its_base(tiny_bert):
    for base in ("gradient", "gradient-x-input"):
        plain = explain(SENTENCES[2], tiny_bert, base)
        smooth = explain(SENTENCES[2], tiny_bert, "smoothgrad", base=base, noise_std=0.0)
        np.testing.assert_allclose(smooth.scores, plain.scores, atol=1e-6)


def test_smoothgrad_seed_matters(tiny_bert):
    a = explain(SENTENCES[2], tiny_bert, "smoothgrad", noise_std=0.1, seed=1)
    b = explain(SENTENCES[2], tiny_bert, "smoothgrad", noise_std=0.1, seed=2)
    assert not np.allclose(a.scores, b.scores)


def test_smoothgrad_rejects_a_base_it_cannot_wrap():
    from textlens import get_method

    with pytest.raises(TextlensError, match="cannot wrap"):
        get_method("smoothgrad", base="occlusion")


def test_conductance_layer_totals_match_the_ig_total(tiny_bert):
    ig = explain(SENTENCES[0], tiny_bert, "integrated-gradients", n_steps=100)
    cond = explain(SENTENCES[0], tiny_bert, "layer-conductance", n_steps=100)
    totals = cond.scores.sum(axis=-1)
    assert np.allclose(totals, ig.scores.sum(), atol=0.05 * abs(ig.scores.sum()) + 1e-3)


def test_embedding_ig_parts_add_up(tiny_bert):
    exp = explain(SENTENCES[0], tiny_bert, "embedding-integrated-gradients", n_steps=30)
    parts = sum(exp.extras[k] for k in ("word", "position", "token_type"))
    np.testing.assert_allclose(parts, exp.scores, atol=1e-6)
    assert np.allclose(exp.extras["token_type"], 0)  # one segment: input equals baseline


def test_occlusion_matches_a_manual_leave_one_out(tiny_bert):
    import torch

    exp = explain(SENTENCES[0], tiny_bert, "occlusion")
    batch = tiny_bert.encode([SENTENCES[0]])
    k = int(np.argmax(np.abs(exp.scores)))
    ids = batch.input_ids.clone()
    ids[0, k] = tiny_bert.tokenizer.mask_token_id
    with torch.no_grad():
        clean = tiny_bert.model(input_ids=batch.input_ids).logits[0, exp.target.index]
        occluded = tiny_bert.model(input_ids=ids).logits[0, exp.target.index]
    assert exp.scores[k] == pytest.approx(float(clean - occluded), abs=1e-5)
    assert all(exp.scores[i] == 0 for i, s in enumerate(exp.special) if s)


def test_attention_rows_are_distributions(tiny_bert):
    exp = explain(SENTENCES[2], tiny_bert, "attention", query="mean")
    np.testing.assert_allclose(exp.scores.sum(axis=-1), 1.0, atol=1e-5)
    with pytest.raises(TextlensError, match="out of range"):
        explain(SENTENCES[0], tiny_bert, "attention", layers=(3,))


def test_conductance_units_add_up_to_the_token_scores(tiny_bert):
    texts = [SENTENCES[0], SENTENCES[1]]
    plain = explain_many(texts, tiny_bert, "layer-conductance", n_steps=8)
    kept = explain_many(texts, tiny_bert, "layer-conductance", n_steps=8, keep_units=True)
    for a, b in zip(plain, kept, strict=True):
        units = b.extras["unit_scores"]
        assert units.shape == (*b.scores.shape[:1], tiny_bert.model.config.hidden_size, len(b))
        np.testing.assert_allclose(units.sum(axis=1), a.scores, atol=1e-5)
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-6)

"""Integrated gradients (and per sub-embedding): known answers."""

import warnings

import numpy as np
import pytest

from conftest import SENTENCES, tiny_model
from textlens import explain, explain_many
from textlens.adapters import HFAdapter
from textlens.methods.baseline import BaselineWarning
from textlens.methods.integrated_gradients import ConvergenceWarning


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


def test_a_coarse_path_warns_that_the_scores_do_not_add_up(tokenizer):
    model = HFAdapter(tiny_model("bert", initializer_range=0.5), tokenizer)
    with pytest.warns(ConvergenceWarning, match=r"raise n_steps \(now 1\)"):
        coarse = explain(SENTENCES[0], model, "integrated-gradients", n_steps=1)
    change, delta = float(coarse.extras["target_change"]), float(coarse.extras["convergence_delta"])
    assert coarse.scores.sum() == pytest.approx(change + delta, rel=1e-4, abs=1e-6)
    assert abs(delta) > 0.1 * abs(change)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fine = explain(SENTENCES[0], model, "integrated-gradients", n_steps=100)
    assert abs(float(fine.extras["convergence_delta"])) <= 0.1 * abs(change)


def test_a_baseline_token_the_tokenizer_lacks_is_announced(byte_tokenizer, tokenizer):
    lm = HFAdapter(tiny_model("gpt2", "causal-lm"), byte_tokenizer)
    for method in ("integrated-gradients", "layer-conductance"):
        with pytest.warns(BaselineWarning, match=r"no mask token, so baseline='mask' uses"):
            explain("The capital of France is", lm, method, baseline="mask", n_steps=4)
    with pytest.warns(BaselineWarning, match=r"no mask token, so replacement='mask'"):
        explain("The capital of France is", lm, "occlusion")
    bert = HFAdapter(tiny_model("bert"), tokenizer)  # has a mask token: nothing to announce
    with warnings.catch_warnings():
        warnings.simplefilter("error", BaselineWarning)
        explain(SENTENCES[0], bert, "occlusion", replacement="mask")

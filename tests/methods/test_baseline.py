"""Path methods report what their baseline predicts, and warn when it favours the target."""

import warnings

import numpy as np
import pytest
import torch

from conftest import SENTENCES, tiny_model
from textlens import explain
from textlens.adapters.hf import HFAdapter
from textlens.methods.baseline import BaselineWarning
from textlens.render.notes import baseline_note

TOPICS = ["world", "business", "sports", "science", "arts"]
PATH_METHODS = ["integrated-gradients", "embedding-integrated-gradients", "layer-conductance"]


@pytest.fixture(scope="module")
def sporty(tokenizer):
    """A 5-topic classifier whose head leans hard to "sports", so that any baseline is sports."""
    model = tiny_model("bert")
    model.num_labels = model.config.num_labels = len(TOPICS)
    model.config.id2label = dict(enumerate(TOPICS))
    model.config.label2id = {t: i for i, t in enumerate(TOPICS)}
    torch.manual_seed(1)
    model.classifier = torch.nn.Linear(model.config.hidden_size, len(TOPICS))
    with torch.no_grad():
        model.classifier.bias.zero_()
        model.classifier.bias[2] = 6.0
    return HFAdapter(model, tokenizer, name="sporty")


def _direct(adapter, text, token):
    """The model's class probabilities for the baseline input, computed without textlens."""
    enc = adapter.tokenizer(text, return_tensors="pt")
    ids = enc["input_ids"].clone()
    special = torch.tensor(
        adapter.tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    ).bool()
    ids[0, ~special] = getattr(adapter.tokenizer, f"{token}_token_id")
    with torch.no_grad():
        return adapter.model(input_ids=ids, attention_mask=enc["attention_mask"]).logits.softmax(
            -1
        )[0]


@pytest.mark.parametrize("method", PATH_METHODS)
def test_warns_when_the_baseline_favours_the_target(sporty, method):
    with pytest.warns(
        BaselineWarning, match=r"'pad' baseline already favours .*'(mask|unk)'.*favour it too"
    ):
        exp = explain(SENTENCES[0], sporty, method, target="sports", n_steps=4)
    assert float(exp.extras["baseline_favours"]) == 1.0
    assert int(exp.extras["baseline_predicted"]) == TOPICS.index("sports")
    assert float(exp.extras["baseline_uniform"]) == pytest.approx(0.2)
    note = baseline_note(exp)
    assert "predicts sports" in note and "try another baseline" in note


def test_no_warning_for_an_outcome_the_baseline_does_not_favour(sporty):
    with warnings.catch_warnings():
        warnings.simplefilter("error", BaselineWarning)
        exp = explain(SENTENCES[0], sporty, "integrated-gradients", target="world", n_steps=4)
    assert float(exp.extras["baseline_favours"]) == 0.0
    assert float(exp.extras["baseline_probability"]) < 0.2
    assert "try another baseline" not in baseline_note(exp)


@pytest.mark.parametrize("token", ["pad", "mask"])
def test_reported_prediction_is_the_models(sporty, token):
    exp = explain(
        SENTENCES[1], sporty, "integrated-gradients", target="world", n_steps=4, baseline=token
    )
    probs = _direct(sporty, SENTENCES[1], token)
    assert float(exp.extras["baseline_probability"]) == pytest.approx(float(probs[0]), rel=1e-4)
    assert float(exp.extras["baseline_predicted_probability"]) == pytest.approx(
        float(probs.max()), rel=1e-4
    )
    # the convergence delta still closes the gap between input and this baseline
    assert np.isfinite(float(exp.extras["convergence_delta"]))


def test_baseline_score_matches_the_delta_on_a_target_without_probabilities(tiny_bert):
    from textlens.targets import HiddenStateTarget

    exp = explain(
        SENTENCES[0], tiny_bert, "integrated-gradients", target=HiddenStateTarget(), n_steps=50
    )
    assert "baseline_probability" not in exp.extras
    note = baseline_note(exp)
    assert note.startswith("baseline 'pad': target score")
    # completeness: scores add up to f(input) - f(baseline), the latter as reported
    gap = exp.target.score - float(exp.extras["baseline_score"])
    assert exp.scores.sum() == pytest.approx(gap, abs=2e-3)

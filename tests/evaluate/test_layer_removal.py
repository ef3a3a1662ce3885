"""Faithfulness of layer explanations: removing tokens' hidden states at their layer."""

import numpy as np
import pytest
import torch

from conftest import SENTENCES, tiny_model
from textlens import explain, explain_many
from textlens.errors import TextlensError
from textlens.evaluate.layer_removal import layer_comprehensiveness


def _probabilities(adapter, batch, rows):
    embeds = adapter.embed(batch)
    with torch.no_grad():
        sub = batch.select(rows.tolist())
        out = adapter.forward(embeds[rows, : sub.input_ids.shape[1]], sub)
    return out.logits.softmax(-1)


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_altering_states_reaches_the_rest_of_the_model(tiny_bert, layer):
    batch = tiny_bert.encode(SENTENCES[:2])
    rows = torch.arange(2)
    clean = _probabilities(tiny_bert, batch, rows)
    with tiny_bert.altering_states(layer, lambda h: h):
        same = _probabilities(tiny_bert, batch, rows)
    torch.testing.assert_close(same, clean, rtol=1e-6, atol=1e-7)
    with tiny_bert.altering_states(layer, lambda h: h * 0.0):
        changed = _probabilities(tiny_bert, batch, rows)
    assert not torch.allclose(changed, clean, atol=1e-4)
    # the hook is gone afterwards
    torch.testing.assert_close(_probabilities(tiny_bert, batch, rows), clean, rtol=1e-6, atol=1e-7)


def test_altering_a_layer_out_of_range_is_refused(tiny_bert):
    with pytest.raises(TextlensError, match=r"not in 0\.\.2"), tiny_bert.altering_states(3, abs):
        pass


def _by_hand(adapter, texts, layer, position):
    """p(x) - p(x with one token's state after block ``layer`` set to the layer's mean over the
    real, non-special tokens of ``texts``), for the first text, with a hook of its own."""
    batch = adapter.encode(texts)
    embeds = adapter.embed(batch)
    with torch.no_grad():
        out = adapter.forward(embeds, batch, hidden_states=True)
    keep = (batch.real_mask & ~batch.special_mask).unsqueeze(-1).float()
    mean = (out.hidden_states[layer] * keep).sum((0, 1)) / keep.sum()
    probs = out.logits.softmax(-1)[0]
    label = int(probs.argmax())
    block = adapter.model.bert.encoder.layer[layer - 1]

    def hook(module, args, output):
        h = (output[0] if isinstance(output, tuple) else output).clone()
        h[0, position] = mean
        return (h, *output[1:]) if isinstance(output, tuple) else h

    handle = block.register_forward_hook(hook)
    try:
        with torch.no_grad():
            first = batch.select([0])
            width = first.input_ids.shape[1]
            one = adapter.forward(embeds[:1, :width], first)
    finally:
        handle.remove()
    return float(probs[label] - one.logits.softmax(-1)[0, label])


@pytest.fixture(scope="module")
def sensitive(tokenizer):
    """A tiny BERT with large random weights, so that one token's state moves its output."""
    from textlens.adapters import HFAdapter

    return HFAdapter(tiny_model("bert", initializer_range=0.5), tokenizer, name="tiny-wide")


def test_one_token_removed_at_a_layer_matches_a_hand_made_hook(sensitive):
    texts, tiny_bert = SENTENCES, sensitive
    exps = explain_many(texts, tiny_bert, "layer-conductance", n_steps=8)
    n = len(exps[0].tokens)
    for layer in (1, 2):
        scores = [np.zeros((2, len(e.tokens))) for e in exps]
        scores[0][layer - 1, 3] = 1.0  # token 3 of the first text ranks first at this layer
        scores[0][layer - 1, 0] = 5.0  # [CLS] ranks higher still, but is never removed
        result = layer_comprehensiveness(exps, tiny_bert, scores=scores, bins=(0.01,))
        expected = _by_hand(tiny_bert, texts, layer, 3)
        if layer == 1:  # after the last block BERT's head reads [CLS] alone
            assert abs(expected) > 1e-4
        assert result.comprehensiveness[0, layer - 1] == pytest.approx(expected, abs=1e-5)
    assert n > 4


def test_the_highest_scores_are_removed_first(sensitive):
    exps = explain_many(SENTENCES, sensitive, "layer-conductance", n_steps=8)
    one = (0.01,)  # one token per text
    lengths = [len(e.tokens) for e in exps]
    # each non-special token's own effect at layer 1, removed alone
    effects = [np.full(n, np.nan) for n in lengths]
    for t in range(1, max(lengths) - 1):
        scores = [np.zeros((2, n)) for n in lengths]
        for b, n in enumerate(lengths):
            scores[b][0, min(t, n - 2)] = 1.0
        alone = layer_comprehensiveness(exps, sensitive, scores=scores, bins=one)
        for b, n in enumerate(lengths):
            if t <= n - 2:
                effects[b][t] = alone.comprehensiveness[b, 0]
    ranked = [np.stack([np.nan_to_num(e, nan=-9.0), np.zeros_like(e)]) for e in effects]
    best = layer_comprehensiveness(exps, sensitive, scores=ranked, bins=one)
    worst = layer_comprehensiveness(
        exps, sensitive, scores=[np.where(r == -9.0, -9.0, -r) for r in ranked], bins=one
    )
    for b, e in enumerate(effects):
        assert best.comprehensiveness[b, 0] == pytest.approx(np.nanmax(e), abs=1e-6)
        assert worst.comprehensiveness[b, 0] == pytest.approx(np.nanmin(e), abs=1e-6)
    assert np.nanmax(effects[0]) - np.nanmin(effects[0]) > 1e-3


def test_results_do_not_depend_on_the_batch(sensitive):
    exps = explain_many(SENTENCES, sensitive, "layer-conductance", n_steps=8)
    together = layer_comprehensiveness(exps, sensitive)
    split = layer_comprehensiveness(exps, sensitive, batch_size=1)
    np.testing.assert_allclose(split.comprehensiveness, together.comprehensiveness, atol=1e-6)
    assert together.comprehensiveness.shape == (3, 2)
    assert together.layers == (1, 2)
    # after the last block BERT's head reads [CLS] alone: removing other tokens there does nothing
    np.testing.assert_allclose(together.comprehensiveness[:, 1], 0.0, atol=1e-5)
    for s in together.summary().values():
        assert s["low"] <= s["mean"] <= s["high"]


def test_a_single_row_explanation_is_refused(tiny_bert):
    flat = explain(SENTENCES[0], tiny_bert, "gradient")
    with pytest.raises(TextlensError, match="layered method"):
        layer_comprehensiveness([flat], tiny_bert)

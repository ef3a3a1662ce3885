"""Integration tests on the real packaged MiniLM and the demo classifier."""

import numpy as np
import pytest
from captum.attr import LayerIntegratedGradients

from textlens import data, explain, explain_many, load_model

pytestmark = pytest.mark.slow


def test_demo_classifier_is_accurate_on_held_out_sentences(demo):
    test = data.rotten_tomatoes("test")[:300]
    exps = explain_many(list(test.texts), demo, "gradient", batch_size=64)
    predicted = [demo.labels.index(e.target.label) for e in exps]
    accuracy = np.mean(np.array(predicted) == np.array(test.labels))
    assert accuracy >= 0.78


def test_demo_is_the_default_model():
    adapter = load_model()
    assert adapter.labels == ("rotten", "fresh")
    assert adapter.n_layers == 6


def test_sentiment_words_carry_the_ig_attribution(demo):
    exp = explain("A gripping, beautifully acted film.", demo, "integrated-gradients")
    assert exp.target.label == "fresh"
    words = dict(exp.to_words().top(2))
    assert set(words) <= {"gripping", "beautifully", "acted", "film"}
    assert abs(float(exp.extras["convergence_delta"])) < 0.01


def test_integrated_gradients_equals_captum_on_the_demo(demo):
    test = data.rotten_tomatoes("test")[:4]
    ours = explain_many(list(test.texts), demo, "integrated-gradients")

    def forward(ids, mask, types):
        return demo.model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits

    lig = LayerIntegratedGradients(forward, demo.word_embeddings)
    for text, exp in zip(test.texts, ours, strict=True):
        batch = demo.encode([text])
        attr = lig.attribute(
            batch.input_ids,
            demo.baseline_ids(batch),
            additional_forward_args=(batch.attention_mask, batch.token_type_ids),
            target=exp.target.index,
            n_steps=50,
        )
        np.testing.assert_allclose(exp.scores, attr.sum(-1)[0].detach().numpy(), atol=1e-5)


def test_encoder_hidden_state_target(tokenizer):
    from textlens.adapters import HFAdapter
    from textlens.targets import HiddenStateTarget
    from textlens.zoo import load_encoder

    model, tok, _ = load_encoder()
    adapter = HFAdapter(model, tok, name="minilm")
    assert adapter.task == "base"
    exp = explain(
        "rare bird has more than enough charm",
        adapter,
        "layer-conductance",
        HiddenStateTarget(layer=6, token=None),
        n_steps=20,
    )
    assert exp.scores.shape == (6, len(exp.tokens))

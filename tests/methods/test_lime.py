"""LIME over words: known answers on an additive model, seeds, word features."""

import numpy as np
import pytest
import torch

from conftest import SENTENCES
from textlens import FunctionAdapter, explain

TEXT = "a gripping and unbelievably moving film"


@pytest.fixture(scope="module")
def additive(tokenizer):
    """A model whose class-1 logit is a sum over tokens: each word's effect is exact."""
    torch.manual_seed(0)
    embeddings = torch.nn.Embedding(30522, 8)
    w = torch.randn(8)

    def forward(embeds, mask):
        score = ((embeds @ w) * mask).sum(dim=1)
        return torch.stack([torch.zeros_like(score), score], dim=1)

    adapter = FunctionAdapter(forward, tokenizer, embeddings, labels=["no", "yes"])
    return adapter, embeddings, w


def word_effects(adapter, embeddings, w, exp):
    """f(text) - f(text without the word), per word, computed directly."""
    ids = adapter.encode([exp.text]).input_ids[0]
    mask_id = adapter.special_token_id("mask")
    with torch.no_grad():
        delta = (embeddings.weight[ids] - embeddings.weight[mask_id]) @ w
    return np.array([float(delta[g].sum()) for g in exp.word_groups()])


def test_recovers_each_words_effect_on_an_additive_model(additive):
    adapter, embeddings, w = additive
    exp = explain(TEXT, adapter, "lime", target="yes", ridge=0.0, n_samples=64)
    words = exp.to_words()
    assert words.tokens == ("a", "gripping", "and", "unbelievably", "moving", "film")
    np.testing.assert_allclose(words.scores, word_effects(adapter, embeddings, w, exp), atol=1e-4)
    # the pieces of one word share its score evenly; special tokens get none
    assert exp.scores[exp.special.index(True)] == 0.0


def test_same_seed_same_answer_other_seed_other_answer(tiny_bert):
    a = explain(SENTENCES[2], tiny_bert, "lime", n_samples=40, seed=1)
    b = explain(SENTENCES[2], tiny_bert, "lime", n_samples=40, seed=1)
    c = explain(SENTENCES[2], tiny_bert, "lime", n_samples=40, seed=2)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.allclose(a.scores, c.scores)


def test_more_samples_approach_the_exact_effects_of_a_nonlinear_model(tiny_bert):
    """On a real (non-additive) model the answer is stable: two seeds agree in ranking."""
    a = explain(SENTENCES[2], tiny_bert, "lime", n_samples=400, seed=1).to_words()
    b = explain(SENTENCES[2], tiny_bert, "lime", n_samples=400, seed=2).to_words()
    ranks = [np.argsort(np.argsort(x.scores)) for x in (a, b)]
    assert np.corrcoef(*ranks)[0, 1] > 0.6

"""Kernel SHAP over words: exact Shapley values when enumerable, efficiency, seeds."""

import itertools
import math

import numpy as np
import pytest
import torch

from conftest import SENTENCES
from textlens import FunctionAdapter, explain

TEXT = "a gripping and moving film"


@pytest.fixture(scope="module")
def interacting(tokenizer):
    """A model with an interaction between tokens (a product), so Shapley values are not just
    leave-one-out effects."""
    torch.manual_seed(0)
    embeddings = torch.nn.Embedding(30522, 4)
    w = torch.randn(4)

    def forward(embeds, mask):
        per_token = (embeds @ w) * mask
        score = per_token.sum(dim=1) + 0.5 * per_token[:, 1] * per_token[:, 2]
        return torch.stack([torch.zeros_like(score), score], dim=1)

    return FunctionAdapter(forward, tokenizer, embeddings, labels=["no", "yes"])


def brute_force_shapley(adapter, text):
    """Shapley values of the words by the definition, removing words with the mask token."""
    batch = adapter.encode([text])
    exp = explain(text, adapter, "gradient", target="yes")
    groups = exp.word_groups()
    mask_id = adapter.special_token_id("mask")

    def f(kept):
        ids = batch.input_ids.clone()
        for i, g in enumerate(groups):
            if i not in kept:
                ids[0, g] = mask_id
        with torch.no_grad():
            out = adapter.forward(adapter.embed(batch, ids), batch)
        return float(out.logits[0, 1])

    n = len(groups)
    values = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        total = 0.0
        for size in range(n):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                total += weight * (f({*subset, i}) - f(set(subset)))
        values.append(total)
    return np.array(values), f(set(range(n))) - f(set())


def test_exact_shapley_values_when_every_coalition_fits(interacting):
    expected, change = brute_force_shapley(interacting, TEXT)
    exp = explain(TEXT, interacting, "kernel-shap", target="yes", n_samples=64)  # 2^5 = 32
    words = exp.to_words()
    np.testing.assert_allclose(words.scores, expected, atol=1e-4)
    assert words.scores.sum() == pytest.approx(change, abs=1e-4)  # efficiency


def test_sampled_values_add_up_and_approach_the_exact_ones(interacting):
    text = "a gripping and moving film that never lets go of you"  # 2^11 > 300 coalitions
    expected, change = brute_force_shapley(interacting, text)
    exp = explain(text, interacting, "kernel-shap", target="yes", n_samples=300).to_words()
    assert exp.scores.sum() == pytest.approx(change, abs=1e-3)
    assert np.abs(exp.scores - expected).max() < 0.1 * np.abs(expected).max()


def test_same_seed_same_answer(tiny_bert):
    a = explain(SENTENCES[2], tiny_bert, "kernel-shap", n_samples=40, seed=3)
    b = explain(SENTENCES[2], tiny_bert, "kernel-shap", n_samples=40, seed=3)
    np.testing.assert_array_equal(a.scores, b.scores)

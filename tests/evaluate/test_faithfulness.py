"""Faithfulness metrics: known answers on a model whose output depends on one token."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from textlens import explain_many
from textlens.adapters.function import FunctionAdapter
from textlens.errors import TextlensError
from textlens.evaluate import evaluate, evaluate_scores, kendall_tau

TEXTS = [
    "the film is great and the cast is fine",
    "a great , slow and rather long story about two old friends on a trip",
    "great",
    "nothing here is great but the music",
]


@pytest.fixture(scope="module")
def one_token_model(tokenizer):
    """Class 1's logit is 10 x the number of 'great' tokens; class 0's is 0."""
    great = tokenizer.convert_tokens_to_ids("great")
    table = torch.nn.Embedding(tokenizer.vocab_size, 1)
    with torch.no_grad():
        table.weight.zero_()
        table.weight[great] = 1.0

    def forward(embeds, mask):
        count = (embeds[..., 0] * mask).sum(dim=1)
        return torch.stack([torch.zeros_like(count), 10 * count], dim=1)

    return FunctionAdapter(forward, tokenizer, table, labels=["other", "great"])


def _perfect(model, texts):
    batch = model.encode(texts)
    great = model.tokenizer.convert_tokens_to_ids("great")
    return [
        (batch.input_ids[b, : int(n)] == great).double().numpy()
        for b, n in enumerate(batch.lengths)
    ]


@pytest.mark.parametrize("removal", ["delete", "mask"])
def test_a_perfect_explanation_gets_the_best_scores(one_token_model, removal):
    results = evaluate_scores(
        one_token_model, TEXTS, _perfect(one_token_model, TEXTS), [1] * 4, removal=removal
    )
    p_full, p_without = 1 / (1 + math.exp(-10)), 0.5
    for r in results:
        assert r.probability == pytest.approx(p_full, abs=1e-6)
        assert r.comprehensiveness == pytest.approx(p_full - p_without, abs=1e-6)  # the maximum
        assert r.sufficiency == pytest.approx(0.0, abs=1e-6)  # the minimum
        assert r.insertion_curve[-1] == pytest.approx(p_full, abs=1e-6)
    long = results[1]
    assert long.insertion_curve[1:] == pytest.approx([p_full] * 10, abs=1e-6)
    assert long.loo_kendall_tau == pytest.approx(1.0)
    assert long.deletion_curve[0] == pytest.approx(p_full) and long.deletion_curve[
        1
    ] == pytest.approx(0.5)
    assert long.deletion_auc < 0.55 and long.insertion_auc > 0.95


def test_random_scores_get_chance_values(one_token_model):
    text = "a great , slow and rather long story about two old friends on a trip home"
    n_real = len(one_token_model.encode([text]).tokens[0]) - 2
    rng = np.random.default_rng(0)
    scores = [rng.random(n_real + 2) for _ in range(300)]
    results = evaluate_scores(one_token_model, [text] * 300, scores, [1] * 300)
    ks = [max(1, math.ceil(q * n_real)) for q in (0.01, 0.05, 0.10, 0.20, 0.50)]
    drop = 1 / (1 + math.exp(-10)) - 0.5
    expected = drop * np.mean([k / n_real for k in ks])  # P('great' among the top k) = k / n
    mean = np.mean([r.comprehensiveness for r in results])
    assert mean == pytest.approx(expected, abs=0.03)
    taus = [r.loo_kendall_tau for r in results]
    assert abs(np.mean(taus)) < 0.05


def test_kendall_tau_matches_scipy():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = rng.integers(0, 4, 12).astype(float), rng.normal(size=12)
        assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic)
    assert math.isnan(kendall_tau(np.ones(5), np.arange(5.0)))


def test_explanations_from_any_method(tiny_bert):
    exps = explain_many(TEXTS[:2], tiny_bert, "integrated-gradients", n_steps=20)
    results = evaluate(exps, tiny_bert)
    for e, r in zip(exps, results, strict=True):
        assert r.completeness == pytest.approx(abs(float(e.extras["convergence_delta"])))
        assert r.extras["label"] == e.target.index
        assert len(r.deletion_curve) == 11 and len(r.comprehensiveness_bins) == 5
    layered = explain_many(TEXTS[:1], tiny_bert, "attention")
    assert math.isnan(evaluate(layered, tiny_bert)[0].completeness)
    with pytest.raises(TextlensError, match="sub-word"):
        evaluate([exps[0].to_words()], tiny_bert)
    with pytest.raises(TextlensError, match="tokens as the model splits it"):
        evaluate_scores(tiny_bert, TEXTS[:1], [np.ones(3)])


def test_an_evaluation_is_a_table_in_a_notebook_and_a_data_frame(tiny_bert):
    exps = explain_many(TEXTS[:2], tiny_bert, "gradient")
    results = evaluate(exps, tiny_bert)
    assert isinstance(results, list) and len(results) == 2
    frame = results.to_frame()
    assert list(frame["text"]) == list(TEXTS[:2]) and set(frame["method"]) == {"gradient"}
    for k, r in enumerate(results):
        assert frame["comprehensiveness"][k] == pytest.approx(r.comprehensiveness)
    table = results._repr_html_()
    assert table.count("<tr>") == 3 and "sufficiency" in table

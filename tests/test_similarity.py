"""The similarity target: two texts under a sentence encoder, both sides explained."""

import numpy as np
import pytest
import torch

from conftest import local_client, tiny_model
from conftest import run_cli as run
from textlens import explain, explain_pair, load_model
from textlens.adapters import HFAdapter
from textlens.errors import TextlensError
from textlens.evaluate import evaluate
from textlens.methods import METHODS
from textlens.methods.base import describe
from textlens.targets import Similarity, SimilarityValue, pool

A, B = "A man is playing a guitar.", "Someone plays an instrument."


@pytest.fixture(scope="module")
def encoder():
    return load_model("encoder")


def _direct(adapter, text, other, pooling="mean"):
    """The similarity the way sentence encoders are used: the HF model straight, mean pooled."""
    tok = adapter.tokenizer
    with torch.no_grad():
        vecs = []
        for t in (text, other):
            enc = tok(t, return_tensors="pt")
            h = adapter.model(**enc).last_hidden_state
            vecs.append(pool(h, enc["attention_mask"], pooling)[0])
    return float(torch.nn.functional.cosine_similarity(vecs[0], vecs[1], dim=0))


def test_integrated_gradients_add_up_to_the_change_in_similarity(encoder):
    a, b = explain_pair(A, B, encoder, "integrated-gradients", n_steps=64)
    expected = _direct(encoder, A, B)
    for exp in (a, b):
        assert exp.target.score == pytest.approx(expected, abs=1e-5)
        change = exp.target.score - float(exp.extras["baseline_score"])
        delta = float(exp.extras["convergence_delta"])
        assert exp.scores.sum() == pytest.approx(change, abs=abs(delta) + 1e-5)
        assert abs(delta) < 1e-3 * abs(change)
    # the words that carry the meaning lead on both sides
    assert dict(a.to_words().top(2)).keys() >= {"guitar"}
    assert dict(b.to_words().top(2)).keys() >= {"instrument"}


def test_dot_and_cls_and_vector_forms(encoder):
    exp = explain(A, encoder, "gradient", Similarity(B, pooling="cls", measure="dot"))
    assert exp.target.kind == "similarity (dot, cls pooling)"
    vector = Similarity(B).vector(encoder)
    by_vector = explain(A, encoder, "gradient-x-input", Similarity(vector))
    by_text = explain(A, encoder, "gradient-x-input", Similarity(B))
    np.testing.assert_allclose(by_vector.scores, by_text.scores, rtol=1e-5, atol=1e-7)
    for bad, message in (
        (lambda: Similarity(""), "the other text is empty"),
        (lambda: Similarity(B, pooling="max"), "unknown pooling 'max'"),
        (lambda: explain_pair(A, " ", encoder), "two non-empty texts"),
    ):
        with pytest.raises(TextlensError, match=message):
            bad()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_explains_a_similarity(tokenizer, name):
    base = HFAdapter(tiny_model("bert", head="base"), tokenizer, name="tiny-encoder")
    settings = dict(describe(METHODS[name], "test_settings"))
    if name == "context-ablation":  # removing words would move what the pooled vector reads
        with pytest.raises(TextlensError, match="explains a classifier's class or a causal LM"):
            explain_pair("a good film", "a great movie", base, name, **settings)
        return
    a, b = explain_pair("a good film", "a great movie", base, name, **settings)
    assert a.target.score == pytest.approx(b.target.score, abs=1e-5)
    assert np.isfinite(a.scores).all() and np.isfinite(b.scores).all()
    assert a.text == "a good film" and b.text == "a great movie"


def test_deleting_the_top_words_follows_the_similarity(encoder):
    a, _ = explain_pair(A, B, encoder, "occlusion")
    other = Similarity(B).vector(encoder).numpy()[None]
    result = evaluate([a], encoder, unit="word", follow=SimilarityValue(other))[0]
    assert result.deletion_curve[0] == pytest.approx(a.target.score, abs=1e-5)
    assert result.deletion_curve[-1] < result.deletion_curve[0]
    assert result.extras["followed"] == "similarity to the other text"


def test_pair_on_the_command_line_and_the_web_api(encoder, tmp_path):
    proc = run("explain", A, "--pair", B, "--method", "gradient", "--unit", "word",
               "--json", str(tmp_path / "p.json"), check=True)  # fmt: skip
    assert proc.stdout.count("explaining: similarity (cosine, mean pooling) of the pair") == 2
    assert "guitar(" in proc.stdout and "instrument(" in proc.stdout
    bad = run("explain", A, "--pair", B, "--target", "fresh")
    assert bad.returncode == 2 and "--pair explains a similarity" in bad.stderr
    alone = run("explain", A, "--target", "similarity")
    assert alone.returncode == 2 and "add --pair" in alone.stderr
    from textlens.server.app import create_app

    client = local_client(create_app(encoder))
    r = client.post("/api/explain", json={"text": A, "pair": B, "method": "gradient"})
    body = r.json()
    assert r.status_code == 200, body
    assert body["pair_explanation"]["text"] == B and body["html"].count('class="tl-row"') == 2
    empty = client.post("/api/explain", json={"text": A, "pair": "  "})
    assert empty.status_code == 422 and "pair text is empty" in empty.json()["detail"]

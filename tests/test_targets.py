import numpy as np
import pytest
import torch

from conftest import SENTENCES, tiny_model
from textlens import explain, explain_many
from textlens.adapters import HFAdapter
from textlens.errors import TextlensError
from textlens.targets import (
    CallableTarget,
    ClassTarget,
    HiddenStateTarget,
    NextTokenTarget,
    SpanTarget,
    TokenTarget,
)


def test_default_target_is_the_predicted_class(tiny_bert):
    exp = explain(SENTENCES[0], tiny_bert, "gradient")
    probs = tiny_bert.class_probabilities(SENTENCES[0])
    assert exp.target.label == max(probs, key=probs.get)
    assert exp.target.probability == pytest.approx(max(probs.values()), abs=1e-6)


def test_class_by_name_index_and_probability(tiny_bert):
    by_name = explain(SENTENCES[0], tiny_bert, "gradient-x-input", target="negative")
    by_index = explain(SENTENCES[0], tiny_bert, "gradient-x-input", target=0)
    np.testing.assert_array_equal(by_name.scores, by_index.scores)
    assert by_name.target.index == 0
    prob = explain(SENTENCES[0], tiny_bert, "integrated-gradients", ClassTarget(0, "probability"))
    assert prob.target.kind == "class-probability"
    total = prob.scores.sum() + float(prob.extras["convergence_delta"])
    assert total == pytest.approx(prob.target.probability - _baseline_prob(tiny_bert, 0), abs=1e-4)


def _baseline_prob(adapter, k):
    batch = adapter.encode([SENTENCES[0]])
    with torch.no_grad():
        out = adapter.forward(adapter.embed(batch, adapter.baseline_ids(batch)), batch)
    return float(out.logits.softmax(-1)[0, k])


def test_unknown_label_lists_the_valid_ones(tiny_bert):
    with pytest.raises(TextlensError, match="valid labels: negative, positive"):
        explain(SENTENCES[0], tiny_bert, "gradient", target="great")
    with pytest.raises(TextlensError, match="out of range"):
        explain(SENTENCES[0], tiny_bert, "gradient", target=5)


def test_question_answering_start_and_end(tokenizer):
    qa = HFAdapter(tiny_model("bert", "question-answering"), tokenizer)
    pair = ("who directed it?", "The film was directed by Jane Campion in 1993.")
    start = explain(pair, qa, "integrated-gradients", "start", n_steps=16)
    end = explain(pair, qa, "integrated-gradients", SpanTarget("end", position=12), n_steps=16)
    assert start.target.kind == "answer-start" and end.target.index == 12
    assert start.text == "who directed it?\nThe film was directed by Jane Campion in 1993."
    words = {start.text[a:b] for a, b in start.offsets if b > a}
    assert {"who", "film", "directed", "1993"} <= words  # offsets point into the joined text
    assert abs(float(start.extras["convergence_delta"])) < 1e-3


def test_token_classification_target(tokenizer):
    tagger = HFAdapter(tiny_model("bert", "token-classification"), tokenizer)
    exp = explain(SENTENCES[0], tagger, "gradient", TokenTarget(position=2))
    assert exp.target.kind == "token-2-label"
    with pytest.raises(TextlensError, match="out of range"):
        explain("Dull.", tagger, "gradient", TokenTarget(position=40))


def test_causal_lm_next_token(tokenizer):
    lm = HFAdapter(tiny_model("gpt2", "causal-lm"), tokenizer)
    exp = explain("the film was", lm, "integrated-gradients", NextTokenTarget("good"), n_steps=16)
    assert exp.target.label == "good" and exp.target.score < 0
    assert abs(float(exp.extras["convergence_delta"])) < 1e-3
    with pytest.raises(TextlensError, match="one token"):
        explain("the film was", lm, "gradient", NextTokenTarget("unbelievably"))


def test_hidden_state_target(tiny_bert):
    exp = explain(SENTENCES[0], tiny_bert, "gradient", HiddenStateTarget(layer=1, token=0, unit=3))
    assert exp.target.kind.startswith("hidden-state layer 1")
    with pytest.raises(TextlensError, match="out of range"):
        explain(SENTENCES[0], tiny_bert, "gradient", HiddenStateTarget(layer=9))


def test_callable_target(tiny_bert):
    margin = CallableTarget(lambda out: out.logits[:, 1] - out.logits[:, 0], description="margin")
    a = explain(SENTENCES[0], tiny_bert, "gradient-x-input", margin)
    pos = explain(SENTENCES[0], tiny_bert, "gradient-x-input", "positive")
    neg = explain(SENTENCES[0], tiny_bert, "gradient-x-input", "negative")
    np.testing.assert_allclose(a.scores, pos.scores - neg.scores, atol=1e-5)
    assert a.target.kind == "margin"


def test_targets_bind_per_text_in_a_batch(tiny_bert):
    exps = explain_many(SENTENCES, tiny_bert, "gradient")
    for text, exp in zip(SENTENCES, exps, strict=True):
        probs = tiny_bert.class_probabilities(text)
        assert exp.target.label == max(probs, key=probs.get)


def test_an_encoder_without_a_head_explains_its_last_hidden_state(tokenizer):
    """A base model's default target is the last layer's hidden state (layer -1)."""
    adapter = HFAdapter(tiny_model("bert", head="base"), tokenizer, name="tiny-base")
    exp = explain(SENTENCES[0], adapter, "gradient")
    assert exp.target.kind.startswith("hidden-state") and np.isfinite(exp.scores).all()
    with pytest.raises(TextlensError, match="layer 9 is out of range"):
        explain(SENTENCES[0], adapter, "gradient", target=HiddenStateTarget(layer=9))


def test_next_token_by_id_and_by_its_digits(byte_tokenizer):
    lm = HFAdapter(tiny_model("gpt2", "causal-lm"), byte_tokenizer)
    paris = byte_tokenizer(" Paris", add_special_tokens=False)["input_ids"]
    assert len(paris) == 1
    by_text = explain("The capital of France is", lm, "gradient", " Paris")
    by_id = explain("The capital of France is", lm, "gradient", paris[0])
    by_digits = explain("The capital of France is", lm, "gradient", str(paris[0]))
    assert by_text.target.index == by_id.target.index == by_digits.target.index == paris[0]
    np.testing.assert_allclose(by_digits.scores, by_text.scores, atol=1e-6)
    assert by_text.target.label == " Paris"  # the text, not the vocabulary's "ĠParis"
    with pytest.raises(TextlensError, match="outside this model's vocabulary"):
        explain("The capital of France is", lm, "gradient", "99999999")
    with pytest.raises(TextlensError, match=r"is \d+ tokens for this tokenizer \(\['Pa', .*space"):
        explain("The capital of France is", lm, "gradient", "Pariscafé")


def test_a_contrastive_target_is_the_target_minus_the_foil(byte_tokenizer):
    model = tiny_model("gpt2", "causal-lm", initializer_range=0.5).double()  # exact sums
    lm = HFAdapter(model, byte_tokenizer)
    text = "The capital of France is"
    why = explain(text, lm, "gradient-x-input", NextTokenTarget(" Paris", contrast=" France"))
    paris = explain(text, lm, "gradient-x-input", " Paris")
    france = explain(text, lm, "gradient-x-input", " France")
    np.testing.assert_allclose(why.scores, paris.scores - france.scores, atol=1e-5)
    assert why.target.score == pytest.approx(paris.target.score - france.target.score, abs=1e-5)
    assert why.target.label == "' Paris' rather than ' France'"
    top = explain(text, lm, "gradient", NextTokenTarget(contrast=" France"))  # the prediction
    assert top.target.index == explain(text, lm, "gradient").target.index
    with pytest.raises(TextlensError, match="is the target token itself"):
        explain(text, lm, "gradient", NextTokenTarget(" Paris", contrast=" Paris"))


# -- a target kind added through the registry: every front end takes it -------------------------
SET = " Paris| France"


def test_a_token_set_is_explained_as_the_log_of_its_total_probability(tiny_lm_dir):
    from textlens.adapters.loading import load_model
    from textlens.targets import TokenSetTarget, as_target

    lm = load_model(str(tiny_lm_dir))
    exp = explain("The capital of France is", lm, "gradient", target=SET, target_kind="token-set")
    ids = [lm.tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in SET.split("|")]
    batch = lm.encode(["The capital of France is"])
    with torch.no_grad():
        logp = lm.forward(lm.embed(batch), batch).logits[0, -1].log_softmax(-1)
    assert exp.target.score == pytest.approx(float(logp[ids].logsumexp(0)), rel=1e-5)
    assert as_target(lm, SET, "token-set") == TokenSetTarget((" Paris", " France"))
    with pytest.raises(TextlensError, match="tokens, separated by"):
        as_target(lm, "", "token-set")


def test_a_new_target_kind_reaches_every_front_end(tiny_lm_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from conftest import local_client
    from textlens.adapters.loading import load_model
    from textlens.cli import main
    from textlens.evaluate.comparison import compare_methods
    from textlens.server.app import create_app

    kind = ["--target", SET, "--target-kind", "token-set"]
    out = tmp_path / "e.json"
    run = CliRunner().invoke(main, ["explain", "The capital of France is", "--model",
                                    str(tiny_lm_dir), "--method", "gradient", *kind,
                                    "--json", str(out)])  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert json.loads(out.read_text())["target"]["kind"] == "next-token-set-log-probability"
    lm = load_model(str(tiny_lm_dir))
    r = local_client(create_app(lm)).post("/api/explain", json={
        "text": "The capital of France is", "method": "gradient", "target": SET,
        "target_kind": "token-set"})  # fmt: skip
    assert r.status_code == 200 and "Paris" in r.json()["explanation"]["target"]["label"]
    (tmp_path / "in.txt").write_text("The capital of France is\nMy favourite city is\n")
    rows = tmp_path / "rows.jsonl"
    run = CliRunner().invoke(main, ["explain-file", str(tmp_path / "in.txt"), "--out", str(rows),
                                    "--model", str(tiny_lm_dir), "--method", "gradient",
                                    "--quiet", *kind])  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert all(json.loads(line)["ok"] for line in rows.read_text().splitlines())
    (tmp_path / "data.txt").write_text("The capital of France is\nMy favourite city is\n")
    report = compare_methods(lm, 2, ["gradient"], data=str(tmp_path / "data.txt"), target=SET,
                             target_kind="token-set", progress=False, naopc=False)  # fmt: skip
    assert report.followed == "probability of the followed set of next tokens"
    assert np.isfinite(report.methods["gradient"].metrics["comprehensiveness"].mean)

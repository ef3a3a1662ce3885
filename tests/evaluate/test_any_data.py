"""`textlens evaluate` on any classifier and data: labels, units, NAOPC, errors, Ctrl-C."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import run_cli as run
from conftest import tiny_model
from textlens import explain
from textlens.adapters import HFAdapter
from textlens.evaluate import comparison
from textlens.evaluate.faithfulness import ERASER_BINS, evaluate_scores
from textlens.evaluate.naopc import aopc_bounds

TOPICS = ("sports", "politics", "science")
WORDS = {
    "sports": ["goal", "match", "team", "coach", "league"],
    "politics": ["vote", "senate", "minister", "law", "party"],
    "science": ["atom", "cell", "theory", "physics", "experiment"],
}


def corpus(n: int, seed: int = 0) -> list[tuple[str, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = i % 3
        a, b = rng.choice(WORDS[TOPICS[k]], 2, replace=False)
        out.append((f"the {a} was about the {b} today.", k))
    return out


@pytest.fixture(scope="module")
def topic_dir(tmp_path_factory, tokenizer):
    """A tiny BERT with three topics, trained for a few steps on a made-up corpus."""
    model = tiny_model("bert", num_labels=3)
    model.config.id2label = dict(enumerate(TOPICS))
    model.config.label2id = {t: i for i, t in enumerate(TOPICS)}
    data = corpus(60)
    enc = tokenizer([t for t, _ in data], padding=True, return_tensors="pt")
    labels = torch.tensor([k for _, k in data])
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    path = tmp_path_factory.mktemp("topics")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def topics(topic_dir):
    from textlens import load_model

    return load_model(str(topic_dir))


def test_evaluate_on_a_three_class_model_and_a_jsonl(topic_dir, tmp_path):
    data = tmp_path / "news.jsonl"
    rows = [{"body": t, "topic": TOPICS[k]} for t, k in corpus(9, seed=1)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "ev"
    proc = run(
        "evaluate", "--model", str(topic_dir), "--data", str(data), "--column", "body",
        "--label-column", "topic", "--n", "8", "--methods", "gradient-x-input,occlusion,random",
        "--unit", "word", "--out", str(out), "--quiet", check=True,
    )  # fmt: skip
    report = json.loads((out / "evaluation.json").read_text())
    assert report["n"] == 8 and report["unit"] == "word" and str(data) in report["data"]
    assert report["model"] == topic_dir.name
    assert report["accuracy"] >= 2 / 3  # the few training steps did learn the topics
    assert sorted(report["methods"]) == ["gradient-x-input", "occlusion", "random"]
    for row in report["methods"].values():
        naopc = row["metrics"]["naopc"]
        assert 0.0 <= naopc["low"] <= naopc["mean"] <= naopc["high"] <= 1.0
        assert row["seconds_per_example"] >= 0
    assert report["naopc_bounds"]["exact"] + report["naopc_bounds"]["beam"] == 8
    first = (out / "evaluation.md").read_text().splitlines()[0]
    assert topic_dir.name in first and "news.jsonl" in first and "words deleted" in first
    assert "| occlusion |" in proc.stdout


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda p: p.write_text(""), [], "holds no texts"),
        (lambda p: p.write_text('{"text": "a goal"}\n'), ["--label-column", "topic"],
         "no 'topic' field in any row"),
        (lambda p: p.write_text('{"body": "a goal"}\n{"body": "a vote"}\n'), [],
         "no usable text in column 'text'"),
        (lambda p: p.write_text('{"text": "a goal", "topic": "cooking"}\n'),
         ["--label-column", "topic"], "label 'cooking' in column 'topic' is not one of"),
        (lambda p: p.write_text('{"text": "a goal", "topic": 1}\n{"text": "x"}\n'),
         ["--label-column", "topic"], "row 1 has no 'topic' label"),
    ],
)  # fmt: skip
def test_bad_data_is_refused_before_anything_is_written(topic_dir, tmp_path, make, args, message):
    data = tmp_path / "in.jsonl"
    make(data)
    out = tmp_path / "never"
    proc = run("evaluate", "--model", str(topic_dir), "--data", str(data), *args,
               "--methods", "random", "--out", str(out), "--quiet")  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_model_without_classes_is_refused(tmp_path, tokenizer):
    base = tmp_path / "base"
    tiny_model("bert", head="base").save_pretrained(base)
    tokenizer.save_pretrained(base)
    data = tmp_path / "in.txt"
    data.write_text("a goal\na vote\n")
    proc = run("evaluate", "--model", str(base), "--data", str(data), "--methods", "random",
               "--out", str(tmp_path / "never"), "--quiet")  # fmt: skip
    assert proc.returncode == 2 and "need a sequence classifier or a causal LM" in proc.stderr
    assert not (tmp_path / "never").exists()


def _aopc(adapter, text, order, unit):
    scores = np.zeros(len(order))
    scores[list(order)] = np.arange(len(order), 0, -1)  # the first in `order` ranks highest
    return evaluate_scores(adapter, [text], [scores], unit=unit)[0].comprehensiveness


def test_naopc_bounds_are_exact_on_short_inputs_and_the_beam_stays_inside(topics):
    text = "the coach of the team"
    bound = aopc_bounds(topics, [text], unit="word")[0]
    assert bound.exact
    every = [_aopc(topics, text, p, "word") for p in itertools.permutations(range(5))]
    assert bound.upper == pytest.approx(max(every), abs=1e-6)
    assert bound.lower == pytest.approx(min(every), abs=1e-6)
    beam = aopc_bounds(topics, [text], unit="word", exact_up_to=0, beam=2)[0]
    assert not beam.exact
    assert bound.lower - 1e-6 <= beam.lower <= beam.upper <= bound.upper + 1e-6
    # a method's AOPC lies within the bounds, and normalises into [0, 1]
    exp = explain(text, topics, "occlusion").to_words()
    mine = evaluate_scores(topics, [text], [exp.scores], unit="word")[0].comprehensiveness
    assert bound.lower - 1e-6 <= mine <= bound.upper + 1e-6
    assert 0.0 <= bound.normalise(mine) <= 1.0
    assert math.isnan(bound.normalise(math.nan))


def test_word_unit_removes_every_piece_of_a_word(topics):
    text = "the physicists voted"  # words split into several pieces by WordPiece
    batch = topics.encode([text])
    pieces = batch.tokens[0]
    assert len(pieces) > 5  # [CLS] the physic ##ists vote ##d [SEP] or similar
    scores = np.array([0.0, 0.0, 1.0])  # the last word ranks first
    got = evaluate_scores(topics, [text], [scores], unit="word", bins=(0.01,))[0]
    full = topics.class_probabilities(text)
    label = max(full, key=full.get)
    without = topics.class_probabilities("the physicists")
    assert got.comprehensiveness == pytest.approx(full[label] - without[label], abs=1e-5)
    assert got.extras["unit"] == "word"
    assert ERASER_BINS[0] == 0.01


def test_ctrl_c_keeps_the_methods_that_finished(topics, monkeypatch, tmp_path):
    import textlens.pipeline as pipeline

    real = pipeline.explain_many
    seen = []

    def stop_on_the_second(texts, adapter, method, *args, **kwargs):
        name = getattr(method, "name", method)
        seen.append(name)
        if name == "occlusion":
            raise KeyboardInterrupt
        return real(texts, adapter, method, *args, **kwargs)

    monkeypatch.setattr(pipeline, "explain_many", stop_on_the_second)
    data = tmp_path / "in.txt"
    data.write_text("\n".join(t for t, _ in corpus(4)) + "\n")
    report = comparison.compare_methods(
        topics, 4, ["gradient-x-input", "occlusion", "random"], data=str(data), progress=False,
        naopc=False,
    )  # fmt: skip
    assert report.interrupted and list(report.methods) == ["gradient-x-input"]
    assert "INTERRUPTED" in comparison.markdown_table(report)
    from textlens import cli

    monkeypatch.setattr(comparison, "compare_methods", lambda *a, **k: report)
    out = tmp_path / "ev"
    result = CliRunner().invoke(cli.main, ["evaluate", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 130
    assert "interrupted: wrote the 1 method(s) that finished (gradient-x-input)" in result.output
    assert json.loads((out / "evaluation.json").read_text())["interrupted"] is True


def test_causal_lm_follows_the_next_token(tokenizer):
    lm = HFAdapter(tiny_model("gpt2", head="causal-lm"), tokenizer, name="tiny-lm")
    texts = ["the team won the", "a vote in the senate"]
    exps = [explain(t, lm, "gradient-x-input") for t in texts]
    from textlens.evaluate import evaluate

    results = evaluate(exps, lm)
    for exp, r in zip(exps, results, strict=True):
        assert r.extras["label"] == exp.target.index
        assert r.probability == pytest.approx(exp.target.probability, rel=1e-4)
        assert r.extras["followed"] == "probability of the followed next token"

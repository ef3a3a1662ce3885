"""The regularisation corpus: the user's texts first, the packaged one only with a notice."""

import json
import warnings

import numpy as np
import pytest

from conftest import SENTENCES, run_cli
from textlens import explain, explain_many
from textlens.corpus import ENOUGH_TEXTS, CorpusNotice, corpus_texts, remember
from textlens.errors import TextlensError

FAST = {"max_steps": 8, "corpus_size": 20, "layers": (1,)}


def _corpus(n: int, word: str = "news") -> list[str]:
    return [f"{word} report number {i} about the {word} of the day" for i in range(n)]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLENS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_no_corpus_falls_back_to_the_packaged_one_with_a_notice(tiny_bert, home):
    with pytest.warns(CorpusNotice, match="--corpus FILE"):
        exp = explain(SENTENCES[0], tiny_bert, "information-loss", **FAST)
    assert exp.params["corpus"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorpusNotice)
        chosen = explain(SENTENCES[0], tiny_bert, "information-loss", corpus="demo", **FAST)
    np.testing.assert_allclose(chosen.extras["sigma"], exp.extras["sigma"], rtol=1e-6)


def test_a_corpus_file_is_used_and_cached_apart(tiny_bert, home, tmp_path):
    news = tmp_path / "news.txt"
    news.write_text("\n".join(_corpus(30)) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorpusNotice)
        from_file = explain(SENTENCES[0], tiny_bert, "information-loss", corpus=str(news), **FAST)
    assert from_file.params["corpus"] == str(news)
    # the same texts handed over in memory give the same spread, hence the same answer
    in_memory = explain(SENTENCES[0], tiny_bert, "information-loss", corpus=remember(_corpus(30)),
                        **FAST)  # fmt: skip
    np.testing.assert_allclose(in_memory.extras["sigma"], from_file.extras["sigma"], rtol=1e-6)
    packaged = explain(SENTENCES[0], tiny_bert, "information-loss", corpus="demo", **FAST)
    assert not np.allclose(packaged.extras["sigma"], from_file.extras["sigma"], rtol=1e-3)
    assert len(list((home / "regularization").glob("*.pt"))) == 2  # one per corpus


def test_explain_many_uses_its_own_texts_when_there_are_enough(tiny_bert, home):
    texts = _corpus(ENOUGH_TEXTS, "match")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorpusNotice)
        exps = explain_many(texts, tiny_bert, "information-loss", batch_size=64, **FAST)
    key = exps[0].params["corpus"]
    assert key == remember(texts) and all(e.params["corpus"] == key for e in exps)
    with pytest.warns(CorpusNotice):
        explain_many(texts[:5], tiny_bert, "information-loss", **FAST)


def test_the_demo_classifier_keeps_the_corpus_it_learnt_from():
    from textlens.corpus import run_corpus
    from textlens.zoo import DEMO_NAME

    texts = _corpus(ENOUGH_TEXTS)
    assert run_corpus(texts, DEMO_NAME) is None and run_corpus(texts, "demo") is None
    assert run_corpus(texts, "my-model") == remember(texts)
    assert run_corpus(texts[:-1], "my-model") is None


def test_bad_corpora_are_one_line(tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("one\ntwo\n")
    with pytest.raises(TextlensError, match=r"has 2 usable texts; .* at least 10"):
        corpus_texts(str(small), 500)
    with pytest.raises(TextlensError, match=r"the corpus file .* does not exist: give"):
        corpus_texts(str(tmp_path / "none.txt"), 500)
    with pytest.raises(TextlensError, match="another process"):
        corpus_texts("texts:000000000000", 500)


def test_explain_file_takes_its_input_as_the_corpus(tiny_dir, tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("\n".join(_corpus(ENOUGH_TEXTS)) + "\n")
    out = tmp_path / "out.jsonl"
    done = run_cli(
        "explain-file", str(data), "--out", str(out), "--model", str(tiny_dir),
        "--method", "information-loss", "--max-steps", "2", "--corpus-size", "10",
        "--layers", "1", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "regularisation" not in done.stderr  # no notice: the input file was the corpus
    first = json.loads(out.read_text().splitlines()[0])
    assert first["explanation"]["params"]["corpus"].startswith("texts:")


def test_the_header_says_what_is_explained(tiny_dir):
    done = run_cli(
        "explain", "a fine film", "--model", str(tiny_dir), "--method", "information-loss",
        "--max-steps", "2", "--corpus-size", "10", "--layers", "1,2", "--corpus", "demo",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "explaining: every token's hidden state at layers 1-2 (phi=hidden)" in done.stdout
    assert "regularisation" not in done.stderr


def test_a_second_method_that_explains_something_else_says_so(tiny_dir):
    done = run_cli(
        "explain", "a fine film", "--model", str(tiny_dir), "--method", "gradient,information-loss",
        "--max-steps", "2", "--corpus-size", "10", "--layers", "1", "--corpus", "demo",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("explaining:")]
    assert lines[0].startswith("explaining: positive") or lines[0].startswith(
        "explaining: negative"
    )
    assert (
        lines[1]
        == "explaining: every token's hidden state at layer 1 (phi=hidden), not the prediction"
    )

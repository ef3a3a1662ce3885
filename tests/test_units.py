"""Scores at token, word or sentence level: grouping by offsets, reductions, every output."""

import json
import random

import numpy as np
import pytest

from conftest import local_client
from conftest import run_cli as run
from textlens import explain
from textlens.explanation import Explanation, sentence_spans, unit_groups
from textlens.render import render_html, to_csv
from textlens.render.notes import unit_note

THREE = "The acting is superb. The plot, however, is a mess! Would I watch it again?"


def test_sentence_spans_of_three_sentences():
    spans = sentence_spans(THREE)
    assert [THREE[a:b] for a, b in spans] == [
        "The acting is superb.",
        "The plot, however, is a mess!",
        "Would I watch it again?",
    ]
    assert sentence_spans('He said "no." Then left.\nNew line') == [(0, 13), (14, 24), (25, 33)]
    assert sentence_spans("  ") == [] and sentence_spans("v1.2 is out") == [(0, 11)]


def _random_text(rng: random.Random) -> str:
    pools = [
        "abcdefghij KLMNOP  xyz",
        ".!?,;:'\"()[]…",
        " \t\n",
        "éüßøçñ",
        "日本語の文章。",
        "Ωπαβγδ",
        "🙂🚀👍",
        "0123456789",
        "\u0301\u200d\u00a0",
    ]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 60)))


@pytest.mark.parametrize("unit", ["token", "word", "sentence"])
def test_offsets_rebuild_random_unicode_texts_exactly(tokenizer, unit):
    """For random texts, units come in order without overlap, each unit's text is its slice,
    every real token is in exactly one unit, and the units joined with the gaps between them
    (what the tokenizer left out) give back the input exactly."""
    rng = random.Random(7)
    checked = 0
    for _ in range(200):
        text = _random_text(rng)
        enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        special = [bool(s) for s in enc["special_tokens_mask"]]
        exp = Explanation(
            text=text,
            tokens=tuple(tokenizer.convert_ids_to_tokens(enc["input_ids"])),
            offsets=offsets,
            special=special,
            scores=np.arange(len(offsets), dtype=float),
            method="gradient",
            target=None,  # type: ignore[arg-type]
        )
        shown = exp.to_units(unit)
        spans = [o for o, s in zip(shown.offsets, shown.special, strict=True) if not s]
        rebuilt, at = [], 0
        for a, b in spans:
            assert at <= a < b <= len(text), (text, spans)
            rebuilt += [text[at:a], text[a:b]]
            at = b
        rebuilt.append(text[at:])
        assert "".join(rebuilt).encode() == text.encode()
        if unit != "token":
            assert list(shown.tokens) == [text[a:b] for a, b in spans]
            covered = sorted(i for g in unit_groups(text, offsets, special, unit) for i in g)
            pairs = enumerate(zip(offsets, special, strict=True))
            real = [i for i, ((a, b), s) in pairs if not s and b > a]
            assert covered == real  # every real token in exactly one unit
        checked += len(spans)
    assert checked > 300


def test_sentence_scores_sum_their_pieces_and_state_the_reduction(tiny_bert):
    exp = explain(THREE, tiny_bert, "gradient-x-input")
    sentences = exp.to_sentences()
    assert sentences.level == "sentence" and len(sentences) == 3
    assert sentences.tokens[1] == "The plot, however, is a mess!"
    real = ~np.asarray(exp.special)
    np.testing.assert_allclose(sentences.scores.sum(), exp.scores[real].sum(), rtol=1e-9)
    assert unit_note(sentences) == "sentences: the sum of their sub-word scores"
    again = Explanation.from_json(sentences.to_json())
    assert again.level == "sentence" and again.tokens == sentences.tokens
    # saliency combines by the norm over all pieces, the information method by the largest
    grad = explain(THREE, tiny_bert, "gradient").to_sentences()
    assert grad.unit_reduce == "l2" and "squared" in unit_note(grad)
    pieces = explain(THREE, tiny_bert, "gradient")
    index = np.asarray(grad.extras["subword_word_index"])
    np.testing.assert_allclose(
        grad.scores[0], np.sqrt((pieces.scores[index == 0] ** 2).sum()), rtol=1e-9
    )


def test_sentence_unit_in_html_csv_and_server(tiny_bert):
    exp = explain(THREE, tiny_bert, "integrated-gradients", n_steps=4)
    page = render_html(exp, unit="sentence")
    assert page.count('class="tl-tok"') == 3 and "sentences: the sum" in page
    rows = to_csv(exp.to_sentences()).splitlines()
    assert len(rows) == 4 and rows[0].endswith(",unit") and rows[1].endswith(",sentence")
    from textlens.server.app import create_app

    client = local_client(create_app(tiny_bert))
    r = client.post("/api/explain", json={"text": THREE, "method": "gradient", "unit": "sentence"})
    body = r.json()
    assert r.status_code == 200, body
    assert body["explanation"]["level"] == "sentence" and len(body["explanation"]["tokens"]) == 3
    paragraphs = client.post("/api/explain", json={"text": THREE, "unit": "paragraph"})
    assert (
        paragraphs.status_code == 200 and paragraphs.json()["explanation"]["level"] == "paragraph"
    )
    bad = client.post("/api/explain", json={"text": THREE, "unit": "chapter"})
    assert bad.status_code == 422


def test_sentence_unit_in_every_cli_output(tiny_dir, tmp_path):
    out = run(
        "explain", THREE, "--model", str(tiny_dir),
        "--method", "gradient-x-input,layer-conductance", "--n-steps", "4", "--unit", "sentence",
        "--html", str(tmp_path / "a.html"), "--png", str(tmp_path / "a.png"),
        "--json", str(tmp_path / "a.json"), check=True,
    ).stdout  # fmt: skip
    assert "sentences: the sum of their sub-word scores" in out
    assert "The plot, however, is a mess!" in out
    items = json.loads((tmp_path / "a.json").read_text())["items"]
    assert [i["level"] for i in items] == ["sentence", "sentence"]
    assert all(len(i["tokens"]) == 3 for i in items)
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "a.html").read_text().count("sentences: the sum") == 2
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": THREE}) + "\n" + json.dumps({"text": "Short. Two."}) + "\n")
    for name in ("rows.jsonl", "rows.parquet"):
        run("explain-file", str(src), "--out", str(tmp_path / name), "--model", str(tiny_dir),
            "--method", "gradient", "--unit", "sentence", "--quiet", check=True)  # fmt: skip
    lines = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [len(json.loads(r["explanation"])["tokens"]) if isinstance(r["explanation"], str)
            else len(r["explanation"]["tokens"]) for r in lines] == [3, 2]  # fmt: skip
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "rows.parquet").to_pylist()
    assert [json.loads(r["explanation"])["level"] for r in table] == ["sentence", "sentence"]
    clash = run("explain", THREE, "--model", str(tiny_dir), "--words", "--unit", "sentence")
    assert clash.returncode == 2 and "--words means --unit word" in clash.stderr

"""Long contexts: documents and a question as one prompt, documents and paragraphs as units,
context ablation, truncation only when asked; the same answers whatever the padding."""

import html
import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from textlens.cli import main
from textlens.errors import TextlensError
from textlens.explanation import paragraph_spans, unit_groups
from textlens.prompt import build_prompt, locate
from textlens.request import Request

DOCS = (
    "The capital of France is Paris. A café is naïve.",
    "Dull film. The plot makes no sense.",
    "A gripping film. The score is lovely.",
)
QUESTION = "The capital of France is"


@pytest.fixture(scope="module")
def lm(tiny_lm_dir):
    from textlens.adapters.loading import load_model

    return load_model(str(tiny_lm_dir))


def test_a_prompt_keeps_where_each_document_is():
    prompt = build_prompt(QUESTION, DOCS)
    assert [prompt.text[a:b] for a, b in prompt.documents] == list(DOCS)
    assert prompt.text.endswith("Question: The capital of France is\nAnswer:")
    custom = build_prompt("Who?", ["x y", "z"], "Q: {question}\n\n{documents}\nA:")
    assert custom.text.startswith("Q: Who?") and custom.text[slice(*custom.documents[1])] == "z"
    assert locate("<s>" + prompt.text + "</s>", DOCS)[0][0] == prompt.documents[0][0] + 3


@pytest.mark.parametrize(("documents", "template", "message"), [
    ([], None, "the document list is empty"),
    (["fine", "  "], None, "document 2 is empty"),
    ("one text", None, "a list of texts"),
    (["fine"], "no places", "the template has no {documents}"),
    (["bad \ud800"], None, "document 1 is not valid Unicode"),
])  # fmt: skip
def test_bad_documents_are_one_line(documents, template, message):
    with pytest.raises(TextlensError, match=message):
        build_prompt(QUESTION, documents, template)


def test_paragraphs_and_documents_as_units():
    text = "One. Two.\n\nThree four.\n \nFive."
    assert [text[a:b] for a, b in paragraph_spans(text)] == ["One. Two.", "Three four.", "Five."]
    offsets = [(0, 4), (5, 9), (11, 16), (17, 22), (26, 31)]
    special = [False] * 5
    assert unit_groups(text, offsets, special, "paragraph") == [[0, 1], [2, 3], [4]]
    assert unit_groups(text, offsets, special, "document", [(11, 22)]) == [[2, 3]]


def test_each_document_gets_a_score_in_every_output(lm, tiny_lm_dir, tmp_path):
    asked = Request(text=QUESTION, methods=("gradient-x-input",), documents=DOCS)
    exp = asked.run(lm).explanations[0]
    docs = exp.to_units("document")
    assert docs.tokens == DOCS and docs.level == "document"
    # tokens that carry characters of a document
    inside = [
        i
        for i, (a, b) in enumerate(exp.offsets)
        if any(s <= a < e for s, e in exp.documents) and not exp.special[i] and b > a
    ]
    assert docs.scores.sum() == pytest.approx(exp.scores[inside].sum(), rel=1e-6)
    files = []
    for n, doc in enumerate(DOCS):
        path = tmp_path / f"d{n}.txt"
        path.write_text(doc)
        files += ["--document", str(path)]
    out = tmp_path / "e.json"
    run = CliRunner().invoke(main, ["explain", QUESTION, "--model", str(tiny_lm_dir), *files,
                                    "--unit", "document", "--method", "gradient-x-input",
                                    "--json", str(out)])  # fmt: skip
    assert run.exit_code == 0, run.stderr
    data = json.loads(out.read_text())
    assert data["level"] == "document" and data["tokens"] == list(DOCS)
    assert DOCS[0] in run.stdout


def test_job_rows_with_documents_and_a_question(lm, tmp_path):
    from textlens.jobs import explain_file

    rows = [{"question": QUESTION, "documents": list(DOCS)}, {"question": "x", "documents": []}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    explain_file(src, out, model=lm, method="gradient", unit="document", progress=False)
    done = [json.loads(line) for line in out.read_text().splitlines()]
    assert done[0]["ok"] and done[0]["explanation"]["tokens"] == list(DOCS)
    assert not done[1]["ok"] and "non-empty list" in done[1]["error"]


def test_context_ablation_finds_the_unit_the_value_depends_on(lm):
    exact = Request(text=QUESTION, methods=("context-ablation",), documents=DOCS,
                    settings={"units": "document"}).run(lm).explanations[0]  # fmt: skip
    assert float(exact.extras["exact"]) == 1.0
    # exact leave-one-out: each document's effect is the drop of the value with its tokens
    # removed (the template's words stay), by hand
    text = build_prompt(QUESTION, DOCS).text
    batch = lm.encode([text], documents=[build_prompt(QUESTION, DOCS).documents])
    groups = unit_groups(text, batch.offsets[0], tuple(batch.special_mask[0].tolist()),
                         "document", batch.documents[0])  # fmt: skip

    def value(dropped):
        ids = [t for i, t in enumerate(batch.input_ids[0].tolist()) if i not in dropped]
        with torch.no_grad():
            logp = lm.model(torch.tensor([ids])).logits[0, -1].float().log_softmax(-1)
        return float(logp[exact.target.index])

    drops = [value(set()) - value(set(g)) for g in groups]
    np.testing.assert_allclose(exact.to_units("document").scores, drops, rtol=1e-4, atol=1e-6)
    sampled = Request(text=QUESTION, methods=("context-ablation",), documents=DOCS,
                      settings={"units": "sentence", "exact_up_to": 2, "n_ablations": 24,
                                "alpha": 0.0}).run(lm).explanations[0]  # fmt: skip
    assert float(sampled.extras["exact"]) == 0.0 and np.isfinite(sampled.extras["fit_r2"])


def test_a_long_causal_prompt_is_cut_only_when_asked(lm):
    long = " ".join(["The capital of France is Paris."] * 40)
    with pytest.raises(TextlensError, match=r"the text is \d+ tokens and this causal LM reads at"):
        Request(text=long, methods=("gradient",)).run(lm)
    kept = Request(text=long, methods=("gradient",), truncate="left").run(lm).explanations[0]
    assert len(kept.tokens) == lm.max_length and kept.text == long
    assert kept.offsets[-1][1] == len(long)  # the end was kept
    answer = Request(text=long, methods=("gradient",), truncate="left", continuation=" Paris")
    gen = answer.run(lm).generations[0]
    assert gen.n_prompt + len(gen.output_tokens) <= lm.max_length


def test_html_folds_each_document_and_colours_its_sentences(lm):
    from textlens.render import render_html

    exp = Request(text=QUESTION, methods=("gradient-x-input",), documents=DOCS).run(lm)
    sentences = exp.explanations[0].to_units("sentence")
    page = render_html(sentences)
    folded = re.findall(r'<details class="tl-doc" data-document="(\d)"( open)?>(.*?)</details>',
                        page, flags=re.S)  # fmt: skip
    assert [int(k) for k, _, _ in folded] == [1, 2, 3]
    assert sum(bool(is_open) for _, is_open, _ in folded) == 1  # the top document is open
    # inside each fold: its sentences, each coloured, and the document's text in full
    for (_, _, body), document in zip(folded, DOCS, strict=True):
        assert body.count('class="tl-tok"') == len(re.findall(r"[.!?](\s|$)", document))
        assert html.unescape(re.sub(r"<[^>]+>", "", body.split("</summary>", 1)[1])) == document
    totals = [float(t) for t in re.findall(r"total ([-+0-9.e]+)</summary>", page)]
    by_document = exp.explanations[0].to_units("document").scores
    assert np.allclose(totals, by_document, rtol=1e-3, atol=1e-4)
    # the question after the documents is still shown, outside every fold
    assert "Question: The capital of France is" in html.unescape(re.sub(r"<[^>]+>", "", page))

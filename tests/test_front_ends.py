"""Every registered method through every front end that takes it, at its default settings.

A method or an option added later must not break one front end unnoticed: the Python API, the
command line (a text, and a generated answer, greedy and sampled), explain-file and the server
(a classifier, and a causal LM's answer) each run every method of the registry as it comes.
"""

import json

import pytest
from click.testing import CliRunner

from conftest import local_client
from textlens import METHODS, explain
from textlens.cli import main
from textlens.server.app import Limits, create_app

NAMES = sorted(METHODS)
PROMPT = "The capital of France is"


def cli(*args):
    """The command line in this process: (exit code, standard output, standard error)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("method", NAMES)
def test_python(tiny_bert, method):
    exp = explain("A gripping, beautifully acted film.", tiny_bert, method)
    assert exp.method == method and exp.scores.shape[-1] == len(exp.tokens)


@pytest.mark.parametrize("method", NAMES)
def test_command_line(tiny_dir, tmp_path, method):
    out = tmp_path / "e.json"
    code, _, err = cli("explain", "a good film", "--model", tiny_dir, "--method", method,
                       "--json", out)  # fmt: skip
    assert code == 0, err
    assert json.loads(out.read_text())["method"] == method


@pytest.mark.parametrize("sample", [None, 3])
@pytest.mark.parametrize("method", NAMES)
def test_command_line_generated_answer(tiny_lm_dir, tmp_path, method, sample):
    out = tmp_path / "g.json"
    extra = [] if sample is None else ["--sample", sample]
    code, _, err = cli("explain", PROMPT, "--model", tiny_lm_dir, "--method", method,
                       "--generate", 2, "--json", out, *extra)  # fmt: skip
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["method"] == method and len(data["matrix"]) >= 1


@pytest.mark.parametrize("method", NAMES)
def test_explain_file(tiny_dir, tmp_path, method):
    src = tmp_path / "in.txt"
    src.write_text("a good film\n\nnot bad at all\n")
    out = tmp_path / "out.jsonl"
    code, _, err = cli("explain-file", src, "--out", out, "--model", tiny_dir,
                       "--method", method, "--quiet")  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["ok"] for r in rows] == [True, False, True]
    assert rows[0]["explanation"]["method"] == method


@pytest.fixture(scope="module")
def classifier_client(tiny_bert):
    return local_client(create_app(tiny_bert, Limits()))


@pytest.fixture(scope="module")
def lm_client(tiny_lm_dir):
    from textlens.adapters.loading import load_model

    return local_client(create_app(load_model(str(tiny_lm_dir)), Limits(max_new_tokens=4)))


@pytest.mark.parametrize("method", NAMES)
def test_server(classifier_client, method):
    r = classifier_client.post("/api/explain", json={"text": "a good film", "method": method})
    assert r.status_code == 200, r.text
    assert r.json()["explanation"]["method"] == method


@pytest.mark.parametrize("method", NAMES)
def test_server_generated_answer(lm_client, method):
    r = lm_client.post("/api/explain", json={"text": PROMPT, "method": method, "generate": 2})
    assert r.status_code == 200, r.text
    assert r.json()["explanation"]["method"] == method

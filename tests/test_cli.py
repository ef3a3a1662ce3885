"""The real console script, in subprocesses."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli as run


def test_methods_lists_every_method_with_defaults():
    out = run("methods", check=True).stdout
    assert "integrated-gradients" in out and "--n-steps  int  (default: 50)" in out
    described = json.loads(run("methods", "--json", check=True).stdout)
    assert {m["name"] for m in described} >= {"gradient", "occlusion", "layer-conductance"}


@pytest.mark.parametrize(
    "args",
    [["--help"], ["explain", "--help"], ["methods"], ["explain", "a film", "--n-steps", "-5"],
     ["explain", "a film", "--device", "bogus"],
     ["explain", "a film", "--method", "no-such-method"]],
)  # fmt: skip
def test_help_listing_and_argument_errors_need_no_torch(args):
    """These answer at once: the method descriptions are read without importing torch."""
    code = (
        f"import sys; sys.argv = ['textlens', *{args!r}]\n"
        "from textlens.cli import main\n"
        "try:\n    main()\nexcept SystemExit as stop:\n"
        "    print('exit', stop.code, 'torch' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    last = proc.stderr.strip().splitlines()[-1]
    assert last in ("exit 0 False", "exit 2 False"), proc.stderr


def test_explain_with_a_model_folder_writes_json(tiny_dir, tmp_path):
    out_file = tmp_path / "exp.json"
    proc = run(
        "explain",
        "A gripping film.",
        "--model",
        str(tiny_dir),
        "--method",
        "integrated-gradients",
        "--n-steps",
        "8",
        "--words",
        "--json",
        str(out_file),
        check=True,
    )
    assert "prediction:" in proc.stdout and "gripping(" in proc.stdout
    assert "\x1b[" not in proc.stdout  # a pipe gets no escape codes
    data = json.loads(out_file.read_text())
    assert data["schema"] == "textlens.explanation/1" and data["level"] == "word"
    assert data["params"]["n_steps"] == 8


def test_explain_layers_html_and_png(tiny_dir, tmp_path):
    html, png = tmp_path / "r.html", tmp_path / "r.png"
    proc = run(
        "explain", "not a good film", "--model", str(tiny_dir), "--method", "layer-conductance",
        "--n-steps", "4", "--layers", "1,2", "--html", str(html), "--png", str(png), check=True,
    )  # fmt: skip
    assert "layer  1:" in proc.stdout and "layer  2:" in proc.stdout
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count('class="tl-layer"') == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "   "], "the text is empty"),
        (["explain", "a film", "--method", "no-such-method"], "unknown method 'no-such-method'"),
        (["explain", "a film", "--model", "/no/such/folder"], "does not exist"),
        (
            ["explain", "a film", "--method", "gradient", "--n-steps", "3"],
            "--n-steps is not a setting",
        ),
        (["explain", "a film", "--target", "great"], "valid labels"),
        (["explain", "a film", "--method", "gradient", "--layers", "2"], "has no layers"),
        (["explain", "a film", "--method", "attention", "--layers", "x"], "numbers like 1,3,6"),
        (["explain", "a film", "--method", "attention", "--layers", "7"], "valid: 0..2"),
        (["explain", "a film", "--png", "/tmp/x.gif"], ".png or .svg"),
        (["explain", "a film", "--contrast", "bad"], "compares two next tokens of a causal"),
        (
            ["explain", "a film", "--json", "/no/such/dir/x.json", "--method", "gradient"],
            "does not exist",
        ),
        (["evaluate", "--n", "1", "--out", "/tmp/never-written"], "--n must be at least 2"),
        (
            ["evaluate", "--methods", "no-such-method", "--out", "/tmp/never-written"],
            "unknown method",
        ),
        (["evaluate", "--layer-analysis", "-3", "--out", "/tmp/never-written"], "0 (off)"),
    ],
)
def test_errors_are_one_line_and_exit_2(tiny_dir, args, message):
    if "--model" not in args:
        args = [*args, "--model", str(tiny_dir)]
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert message in lines[0]
    assert not Path("/tmp/never-written").exists()


@pytest.mark.slow
def test_explain_on_the_demo_classifier():
    proc = run("explain", "A gripping, beautifully acted film.", check=True)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("prediction: fresh")
    assert "convergence delta" in proc.stdout


def test_the_prediction_comes_from_the_explanations_run(tiny_bert):
    """The class probabilities are read from the explained forward pass: no second run."""
    from textlens import explain

    exp = explain("a good film", tiny_bert, "gradient")
    label, probs = exp.target.prediction()
    direct = tiny_bert.class_probabilities("a good film")
    assert label == max(direct, key=direct.get)
    assert probs == pytest.approx(direct, abs=1e-6)
    assert exp.to_dict()["target"]["probabilities"] == pytest.approx(direct, abs=1e-6)


def test_a_causal_lm_explains_why_one_next_token_rather_than_another(tiny_lm_dir, tmp_path):
    out_file = tmp_path / "why.json"
    args = ["explain", "The capital of France is", "--model", str(tiny_lm_dir)]
    proc = run(*args, "--target", " Paris", "--contrast", " France", "--json", str(out_file),
               "--method", "gradient-x-input", check=True)  # fmt: skip
    assert "log p(' Paris') - log p(' France')" in proc.stdout and "Ġ" not in proc.stdout
    data = json.loads(out_file.read_text())
    assert data["target"]["kind"] == "next-token-log-probability-difference"
    assert "Ġ" not in "".join(data["tokens"])
    bad = run(*args, "--target", " Paris", "--contrast", "Pariscafé")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "tokens for this tokenizer" in bad.stderr and "leading space" in bad.stderr

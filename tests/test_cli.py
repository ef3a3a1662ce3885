"""The real console script, in subprocesses."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_model

TEXTLENS = shutil.which("textlens") or str(Path(sys.executable).parent / "textlens")


def run(*args, check=False):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([TEXTLENS, *args], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("tiny")
    tiny_model("bert").save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_methods_lists_every_method_with_defaults():
    out = run("methods", check=True).stdout
    assert "integrated-gradients" in out and "--n-steps  int  (default: 50)" in out
    described = json.loads(run("methods", "--json", check=True).stdout)
    assert {m["name"] for m in described} >= {"gradient", "occlusion", "layer-conductance"}


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
    assert "prediction:" in proc.stdout and "gripping:" in proc.stdout
    data = json.loads(out_file.read_text())
    assert data["schema"] == "textlens.explanation/1" and data["level"] == "word"
    assert data["params"]["n_steps"] == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "   "], "the text is empty"),
        (["explain", "a film", "--method", "lime"], "unknown method 'lime'"),
        (["explain", "a film", "--model", "/no/such/folder"], "does not exist"),
        (
            ["explain", "a film", "--method", "gradient", "--n-steps", "3"],
            "--n-steps is not a setting",
        ),
        (["explain", "a film", "--target", "great"], "valid labels"),
        (
            ["explain", "a film", "--json", "/no/such/dir/x.json", "--method", "gradient"],
            "does not exist",
        ),
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


@pytest.mark.slow
def test_explain_on_the_demo_classifier():
    proc = run("explain", "A gripping, beautifully acted film.", check=True)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("prediction: fresh")
    assert "convergence delta" in proc.stdout

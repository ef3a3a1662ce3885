"""The method comparison and the evaluate command."""

import json
import math

import numpy as np
import pytest

from conftest import run_cli as run
from textlens import explain_many
from textlens.evaluate.comparison import bootstrap_interval
from textlens.evaluate.layers import token_groups


def test_bootstrap_and_groups(tiny_bert):
    mean, low, high = bootstrap_interval(np.arange(100.0))
    assert low < mean == 49.5 < high and high - low < 15
    assert all(math.isnan(v) for v in bootstrap_interval([math.nan]))
    exp = explain_many(["The film is great, really!"], tiny_bert, "gradient")[0]
    groups = dict(zip(exp.tokens, token_groups(exp), strict=True))
    assert groups["great"] == "sentiment" and groups["the"] == "function"
    assert groups[","] == "punctuation" and groups["[CLS]"] == "special"
    assert groups["film"] == "other words"


@pytest.mark.slow
def test_evaluate_command_end_to_end(tiny_dir, tmp_path):
    out = tmp_path / "ev"
    proc = run(
        "evaluate", "--model", str(tiny_dir), "--n", "3", "--out", str(out),
        "--layer-analysis", "2", "--quiet", check=True,
    )  # fmt: skip
    assert "| random |" in proc.stdout and "| information-loss |" in proc.stdout
    report = json.loads((out / "evaluation.json").read_text())
    assert report["n"] == 3 and "random" in report["methods"]
    from textlens import METHODS

    # every registered method and the random baseline
    assert sorted(report["methods"]) == sorted([*METHODS, "random"])
    assert (out / "evaluation-curves.png").stat().st_size > 10_000
    assert (out / "layers-groups.png").exists() and (out / "layers.md").exists()
    bad = run(
        "evaluate", "--model", str(tiny_dir), "--methods", "no-such-method", "--out", str(out)
    )
    assert bad.returncode == 2 and "unknown method 'no-such-method'" in bad.stderr

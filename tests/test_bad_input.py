"""Bad input: one line that says what to do (CLI exit 2, TextlensError, HTTP 422), no output."""

import dataclasses
import json
import os
import subprocess
import warnings

import pytest

from conftest import SENTENCES, TEXTLENS, local_client, run_cli
from textlens import explain, explain_many
from textlens.adapters import TruncationWarning
from textlens.errors import TextlensError


@pytest.fixture(scope="module")
def server_client(tiny_bert):
    from textlens.server.app import create_app

    return local_client(create_app(tiny_bert))


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_or_blank_text(tiny_bert, text):
    with pytest.raises(TextlensError, match="empty"):
        explain(text, tiny_bert, "gradient")


def test_too_long_text_is_truncated_with_one_warning(tiny_bert):
    long = "good " * 400
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exps = explain_many([long, long, SENTENCES[0]], tiny_bert, "gradient")
    cut = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(cut) == 1
    assert "kept the first 128 tokens" in str(cut[0].message)
    assert len(exps[0].tokens) == 128


def test_unknown_method_lists_the_registry(tiny_bert):
    with pytest.raises(
        TextlensError, match="available: attention, context-ablation, embedding-integrated"
    ):
        explain(SENTENCES[0], tiny_bert, "no-such-method")


def test_unknown_setting_names_the_valid_ones(tiny_bert):
    with pytest.raises(TextlensError, match="its settings: baseline, internal_batch_size, n_steps"):
        explain(SENTENCES[0], tiny_bert, "integrated-gradients", steps=3)


def test_a_string_is_not_a_list_of_texts(tiny_bert):
    with pytest.raises(TextlensError, match="list of texts"):
        explain_many("a film", tiny_bert, "gradient")


# -- every numeric setting is checked against the range its method declares --------------------
# (method, setting, value as typed on a command line, part of the one-line message)
BAD_SETTINGS = [
    ("integrated-gradients", "n_steps", "-5", "at least 1"),
    ("integrated-gradients", "n_steps", "0", "at least 1"),
    ("integrated-gradients", "internal_batch_size", "0", "at least 1"),
    ("layer-conductance", "n_steps", "0", "at least 1"),
    ("occlusion", "internal_batch_size", "-1", "at least 1"),
    ("smoothgrad", "n_samples", "0", "at least 1"),
    ("smoothgrad", "noise_std", "nan", "at least 0"),
    ("smoothgrad", "noise_std", "inf", "at least 0"),
    ("smoothgrad", "noise_std", "-0.1", "at least 0"),
    ("information-loss", "rate", "-1", "above 0"),
    ("information-loss", "rate", "0", "above 0"),
    ("information-loss", "rate", "nan", "above 0"),
    ("information-loss", "n_samples", "0", "at least 1"),
    ("information-loss", "max_steps", "0", "at least 1"),
    ("information-loss", "tol", "-0.5", "at least 0"),
    ("information-loss", "tol", "nan", "at least 0"),
    ("information-loss", "lr", "inf", "above 0"),
    ("information-loss", "corpus_size", "5", "at least 10 sentences"),
    ("layer-conductance", "keep_units", "maybe", "true or false"),
]


def _python_value(raw):
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            return raw


@pytest.mark.parametrize(("method", "name", "raw", "message"), BAD_SETTINGS)
def test_bad_setting_python(tiny_bert, method, name, raw, message):
    with pytest.raises(TextlensError, match=message) as caught:
        explain(SENTENCES[0], tiny_bert, method, **{name: _python_value(raw)})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("method", "name", "raw", "message"), BAD_SETTINGS)
def test_bad_setting_cli(tiny_dir, tmp_path, method, name, raw, message):
    out = tmp_path / "e.json"
    flag = "--" + name.replace("_", "-")
    proc = run_cli("explain", "a film", "--model", str(tiny_dir), "--method", method,
                   f"{flag}={raw}", "--json", str(out))  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("method", "name", "raw", "message"), BAD_SETTINGS)
def test_bad_setting_server(server_client, method, name, raw, message):
    r = server_client.post(
        "/api/explain", json={"text": "a film", "method": method, "params": {name: raw}}
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert message in detail and "\n" not in detail


def test_wrong_types_name_the_setting(tiny_bert):
    with pytest.raises(TextlensError, match=r"n_steps='10' is not valid .* a whole number"):
        explain(SENTENCES[0], tiny_bert, "integrated-gradients", n_steps="10")
    with pytest.raises(TextlensError, match=r"keep_units='yes' is not valid .* true or false"):
        explain(SENTENCES[0], tiny_bert, "layer-conductance", keep_units="yes")


@pytest.mark.parametrize(("raw", "expected"), [("yes", True), ("On", True), ("0", False),
                                               ("false", False), ("no", False)])  # fmt: skip
def test_usual_boolean_spellings(raw, expected):
    from textlens.methods import parse_settings

    assert parse_settings("layer-conductance", {"keep_units": raw}) == {"keep_units": expected}


def test_a_method_made_directly_is_checked_too():
    from textlens.methods.integrated_gradients import IntegratedGradients

    with pytest.raises(TextlensError, match="at least 1"):
        IntegratedGradients(n_steps=0)
    good = IntegratedGradients(n_steps=4)
    with pytest.raises(TextlensError, match="at least 1"):
        dataclasses.replace(good, n_steps=-1)


# -- other arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--max-length", "-5"], "--max-length must be at least 1"),
    (["--max-length", "0"], "--max-length must be at least 1"),
    (["--max-length", "2"], "leaves no room for words"),
    (["--device", "bogus"], "unknown device 'bogus': use cpu, cuda, cuda:N or mps"),
    (["--device", "cuda:99"], "is not available on this machine; available: cpu"),
    (["--n-steps", "abc"], "bad value 'abc' for --n-steps: use a whole number"),
    (["--max-length", "abc"], "Invalid value for '--max-length'"),
])  # fmt: skip
def test_bad_arguments_cli(tiny_dir, tmp_path, args, message):
    out = tmp_path / "e.html"
    proc = run_cli("explain", "a film", "--model", str(tiny_dir), *args, "--html", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_length": -5}, "max_length=-5 is not valid"),
    ({"max_length": 0}, "max_length=0 is not valid"),
    ({"max_length": 2}, "leaves no room for words"),
    ({"batch_size": 0}, "batch_size=0 is not valid"),
    ({"device": "bogus"}, "unknown device 'bogus'"),
    ({"device": "cuda:99"}, "not available on this machine"),
])  # fmt: skip
def test_bad_arguments_python(tiny_bert, kwargs, message):
    with pytest.raises(TextlensError, match=message):
        explain_many([SENTENCES[0], SENTENCES[1]], tiny_bert, "gradient", **kwargs)


def test_load_model_refuses_a_device_it_does_not_have(tiny_dir):
    from textlens import load_model

    with pytest.raises(TextlensError, match="available: cpu"):
        load_model(str(tiny_dir), device="cuda:99")


def test_an_output_that_cannot_be_written_is_one_line(tiny_dir, tmp_path):
    (tmp_path / "plain").write_text("a file, not a folder")
    cases = [
        (["--html", str(tmp_path / "plain" / "x.html")], "is not a folder"),
        (["--json", str(tmp_path)], "is a directory"),
    ]
    for args, message in cases:
        proc = run_cli("explain", "a film", "--model", str(tiny_dir), "--method", "gradient", *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_a_write_refused_by_the_system_is_one_line(tmp_path, monkeypatch):
    """A read-only folder or a full disk: the write fails with one line and leaves nothing."""
    import tempfile

    from click.testing import CliRunner
    from tests.render.conftest import make_flat

    from textlens import cli, render
    from textlens.errors import OutputError

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=r"cannot write .*Permission denied"):
        render.save_html(make_flat(), tmp_path / "x.html")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(cli.os, "access", lambda *a: False)  # a read-only folder, even for root
    result = CliRunner().invoke(cli.main, ["explain", "a film", "--html", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"error: folder {tmp_path} is not writable: choose another output path"
    )
    assert list(tmp_path.iterdir()) == []


def test_evaluate_makes_its_default_output_folder(tiny_dir, tmp_path):
    proc = subprocess.run(
        [TEXTLENS, "evaluate", "--model", str(tiny_dir), "--n", "2", "--methods", "gradient",
         "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "evaluation" / "evaluation.md").exists()
    (tmp_path / "file").write_text("x")
    refused = run_cli("evaluate", "--model", str(tiny_dir), "--n", "2", "--out",
                      str(tmp_path / "file" / "ev"))  # fmt: skip
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1 and "is not a folder" in lines[0]


# -- text that is not clean Unicode, or has no words --------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("good \ud800 film", "not valid Unicode: character 5 is a lone surrogate"),
        ("\u200b\u200b\u200d", "no words the tokenizer can read"),
        ("\x00\x00", "no words the tokenizer can read"),
    ],
)
def test_unclean_text_python_and_server(tiny_bert, server_client, text, message):
    with pytest.raises(TextlensError, match=message):
        explain(text, tiny_bert, "gradient")
    body = json.dumps({"text": text, "method": "gradient"})  # escapes, as a browser sends them
    r = server_client.post(
        "/api/explain", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and message in r.json()["detail"], r.text


def test_lone_surrogate_as_a_json_escape(server_client):
    body = b'{"text": "good \\ud800 film", "method": "gradient"}'
    r = server_client.post(
        "/api/explain", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "not valid Unicode" in r.json()["detail"]


def test_bytes_that_are_not_utf8_on_the_command_line(tiny_dir, tmp_path):
    proc = subprocess.run(
        [TEXTLENS, "explain", b"good \xff film", "--model", str(tiny_dir)],
        capture_output=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "not valid Unicode" in lines[0], lines


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"a good film", "not bytes .*decode bytes first"),
        (None, "not NoneType"),
        (42, "not int 42"),
        (["a", "list"], "not list"),
    ],
)
def test_api_wrong_types_are_named(tiny_bert, value, message):
    with pytest.raises(TextlensError, match=message):
        explain(value, tiny_bert, "gradient")


def test_api_wrong_setting_types_are_named(tiny_bert):
    with pytest.raises(TextlensError, match="layers='abc' is not valid"):
        explain(SENTENCES[0], tiny_bert, "attention", layers="abc")
    with pytest.raises(TextlensError, match="takes a list of texts, not NoneType"):
        explain_many(None, tiny_bert, "gradient")


# -- targets ---------------------------------------------------------------------------------------
def test_negative_class_index_is_refused(tiny_bert, tiny_dir, server_client):
    for target in (-1, "-1"):
        with pytest.raises(TextlensError, match=r"class index -1 is out of range; valid: 0\.\.1"):
            explain(SENTENCES[0], tiny_bert, "gradient", target=target)
    proc = run_cli("explain", "a film", "--model", str(tiny_dir), "--target", "-1")
    assert proc.returncode == 2 and "out of range; valid: 0..1" in proc.stderr
    r = server_client.post("/api/explain", json={"text": "ok", "method": "gradient",
                                                 "target": "-1"})  # fmt: skip
    assert r.status_code == 422 and "out of range" in r.json()["detail"]


# -- settings whose memory cannot fit --------------------------------------------------------------
HUGE = 10**6  # Gauss-Legendre alone: 16 bytes x n_steps^2 = 14.6 TiB


def test_memory_is_estimated_before_running(tiny_bert):
    from textlens.memory import ResourceError

    with pytest.raises(ResourceError, match=r"needs about \d+\.\d GiB .* the largest n_steps "
                                            r"that fits is \d+"):  # fmt: skip
        explain(SENTENCES[0], tiny_bert, "integrated-gradients", n_steps=HUGE)
    with pytest.raises(ResourceError, match="the largest n_samples that fits"):
        explain(SENTENCES[0], tiny_bert, "smoothgrad", n_samples=10**12)


def test_the_largest_value_named_fits(tiny_bert):
    from textlens.memory import GIB, ResourceError, check_memory
    from textlens.methods import get_method

    batch = tiny_bert.encode([SENTENCES[2]])
    method = get_method("integrated-gradients", n_steps=HUGE)
    with pytest.raises(ResourceError) as caught:
        check_memory(method, tiny_bert, batch, available=GIB)
    largest = int(str(caught.value).rsplit(" ", 1)[-1])
    fits = get_method("integrated-gradients", n_steps=largest)
    more = get_method("integrated-gradients", n_steps=largest + 1)
    assert fits.memory_bytes(tiny_bert, batch) <= 0.8 * GIB < more.memory_bytes(tiny_bert, batch)
    check_memory(fits, tiny_bert, batch, available=GIB)  # no error


def test_memory_refusal_cli_and_job(tiny_dir, tiny_bert, tmp_path):
    proc = run_cli("explain", "a film", "--model", str(tiny_dir), "--n-steps", str(HUGE))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "the largest n_steps that fits" in lines[0]
    from textlens.jobs import explain_file
    from textlens.memory import ResourceError

    (tmp_path / "in.txt").write_text("good\nbad\n")
    with pytest.raises(ResourceError, match="needs about"):
        explain_file(tmp_path / "in.txt", tmp_path / "out.jsonl", model=tiny_bert,
                     settings={"n_steps": HUGE}, progress=False)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_a_given_model_is_never_moved_to_another_device(tiny_bert, monkeypatch):
    import textlens.devices

    monkeypatch.setattr(textlens.devices, "available_devices", lambda: ["cpu", "cuda:0"])
    with pytest.raises(TextlensError, match="does not move a model it was given"):
        explain(SENTENCES[0], tiny_bert, "gradient", device="cuda")
    assert tiny_bert.device.type == "cpu"
    assert next(tiny_bert.model.parameters()).device.type == "cpu"
    assert explain(SENTENCES[0], tiny_bert, "gradient", device="cpu").scores.shape[0] > 0

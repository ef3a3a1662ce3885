"""explain-file: readers, error rows, outputs, and resuming after SIGKILL (a real process)."""

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from conftest import TEXTLENS
from conftest import run_cli as run
from textlens.data import read_inputs, read_texts
from textlens.errors import TextlensError
from textlens.jobs import _recover, explain_file


def stop(done):
    """``on_batch`` that interrupts a job after its first batch, as Ctrl-C would."""
    raise KeyboardInterrupt


def _interrupted_job(folder, adapter):
    """A three-line job interrupted after its first row: (input, output)."""
    src = folder / "in.txt"
    src.write_text("good\nbad\nfine\n")
    out = folder / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        explain_file(src, out, model=adapter, method="gradient", batch_size=1,
                     progress=False, on_batch=stop)  # fmt: skip
    return src, out


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_readers(tmp_path):
    (tmp_path / "a.txt").write_text("good film\n\nbad film\n")
    rows = read_texts(tmp_path / "a.txt")
    assert [r.text for r in rows] == ["good film", "", "bad film"]
    assert rows[1].error == "the text is empty"
    (tmp_path / "a.jsonl").write_text('{"text": "ok", "k": 7}\nnot json\n{"other": 1}\n')
    rows = read_texts(tmp_path / "a.jsonl", id_column="k")
    assert rows[0].id == "7" and rows[0].error is None
    assert "not JSON" in rows[1].error and "no 'text' field" in rows[2].error
    (tmp_path / "a.csv").write_text('review,label\n"fine, really",1\n')
    assert read_texts(tmp_path / "a.csv", column="review")[0].text == "fine, really"
    with pytest.raises(TextlensError, match=r"no column 'text'.*review, label"):
        read_texts(tmp_path / "a.csv")
    (tmp_path / "a.xlsx").write_bytes(b"PK")
    with pytest.raises(TextlensError, match=r"\.txt, \.jsonl, \.csv or \.parquet"):
        read_texts(tmp_path / "a.xlsx")


def test_parquet_folders_and_globs_are_read_as_one_input(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(
        pa.table({"body": ["first", None, "third"], "n": [1, 2, 3]}), folder / "b.parquet"
    )
    (folder / "a.txt").write_text("zero\n")
    (folder / "_notes.txt").write_text("skipped: starts with _\n")
    rows = read_inputs(folder, column="body")
    assert [r.text for r in rows] == ["zero", "first", "", "third"]
    assert [r.row for r in rows] == [0, 1, 2, 3]
    assert [r.id for r in rows] == ["a.txt:0", "b.parquet:0", "b.parquet:1", "b.parquet:2"]
    assert rows[2].error == "the 'body' value is not a string"
    assert [r.id for r in read_inputs(folder / "b.parquet", column="body", id_column="n")] == [
        "1", "2", "3",
    ]  # fmt: skip
    assert [r.text for r in read_inputs(str(folder / "?.txt"))] == ["zero"]
    with pytest.raises(TextlensError, match=r"no column 'text'.*body, n.*--column"):
        read_inputs(folder / "b.parquet")
    with pytest.raises(TextlensError, match="no file matches"):
        read_inputs(str(folder / "*.csv"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(TextlensError, match="not a readable Parquet file"):
        read_texts(tmp_path / "bad.parquet")


def test_jsonl_output_every_row_once_with_errors(tmp_path, tiny_bert):
    src = tmp_path / "in.txt"
    src.write_text("a good film\n\nnot bad at all\n   \nfine\n")
    out = tmp_path / "out.jsonl"
    summary = explain_file(src, out, model=tiny_bert, method="gradient", progress=False)
    rows = _rows(out)
    assert [r["row"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["ok"] for r in rows] == [True, False, True, False, True]
    assert rows[1]["error"] == "the text is empty" and rows[1]["explanation"] is None
    assert rows[0]["explanation"]["schema"] == "textlens.explanation/1"
    assert summary.failed == 2 and summary.explained == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]
    with pytest.raises(TextlensError, match="already exists"):
        explain_file(src, out, model=tiny_bert, method="gradient", progress=False)


def test_parquet_output(tmp_path, tiny_bert):
    src = tmp_path / "in.csv"
    src.write_text("text,id\ngood,a\nbad,b\n")
    out = tmp_path / "out.parquet"
    explain_file(src, out, model=tiny_bert, method="gradient", id_column="id", progress=False)
    frame = pd.read_parquet(out)
    assert list(frame["id"]) == ["a", "b"] and frame["ok"].all()
    assert json.loads(frame["explanation"][0])["text"] == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.parquet"]


def test_half_written_line_is_dropped(tmp_path):
    journal = tmp_path / "j.jsonl"
    journal.write_text('{"row": 0, "ok": true}\n{"row": 1, "ok": tr')
    done, ignored, dropped = _recover(journal, 5)
    assert list(done) == [0] and ignored == 0 and dropped == 0
    assert journal.read_text() == '{"row": 0, "ok": true}\n'


def test_unreadable_journal_lines_are_dropped_and_reported(tmp_path):
    deep = '{"row": ' + "[" * 100_000 + "]" * 100_000 + ', "ok": true}\n'
    digits = '{"row": 1' + "0" * 5000 + ', "ok": true}\n'
    good = ['{"row": 0, "ok": true}\n', '{"row": 2, "ok": false}\n']
    journal = tmp_path / "j.jsonl"
    journal.write_text(
        good[0] + deep + "not json\n" + digits + '{"row": true, "ok": 1}\n' + good[1]
    )
    done, ignored, dropped = _recover(journal, 5)
    assert sorted(done) == [0, 2] and ignored == 0 and dropped == 4
    assert journal.read_text() == "".join(good)  # the rows after a bad line are kept


def test_a_poisoned_journal_does_not_stop_the_job(tmp_path, tiny_bert):
    src, out = _interrupted_job(tmp_path, tiny_bert)
    with open(out, "a") as journal:
        journal.write('{"row": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.warns(UserWarning, match="dropped 1 unreadable line"):
        summary = explain_file(src, out, model=tiny_bert, method="gradient", progress=False)
    assert summary.done_before == 1 and summary.explained == 3
    assert [r["row"] for r in _rows(out)] == [0, 1, 2]


def test_an_output_inside_its_input_folder_is_left_out_of_the_input(tmp_path, tiny_bert):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("good\nbad\nfine\nslow\n")
    out = folder / "result.jsonl"

    with pytest.raises(KeyboardInterrupt):
        explain_file(folder, out, model=tiny_bert, method="gradient", batch_size=2,
                     progress=False, on_batch=stop)  # fmt: skip
    assert out.exists()  # the journal now lies inside the input folder
    summary = explain_file(folder, out, model=tiny_bert, method="gradient", batch_size=2,
                           progress=False)  # fmt: skip
    assert summary.done_before == 2 and summary.total == 4
    assert [r["text"] for r in _rows(out)] == ["good", "bad", "fine", "slow"]
    (folder / "result.jsonl").unlink()
    parquet = folder / "result.parquet"  # its journal: result.parquet.partial.jsonl
    with pytest.raises(KeyboardInterrupt):
        explain_file(str(folder / "*"), parquet, model=tiny_bert, method="gradient",
                     batch_size=2, progress=False, on_batch=stop)  # fmt: skip
    summary = explain_file(str(folder / "*"), parquet, model=tiny_bert, method="gradient",
                           batch_size=2, progress=False)  # fmt: skip
    assert summary.done_before == 2
    assert list(pd.read_parquet(parquet)["text"]) == ["good", "bad", "fine", "slow"]


@pytest.mark.parametrize("dangling", [True, False])
def test_a_symbolic_link_as_output_is_refused_before_any_write(tmp_path, tiny_bert, dangling):
    src = tmp_path / "in.txt"
    src.write_text("good\n")
    target = tmp_path / "elsewhere.jsonl"
    if not dangling:
        target.write_text("")
    out = tmp_path / "out.jsonl"
    out.symlink_to(target)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(TextlensError, match="is a symbolic link"):
        explain_file(src, out, model=tiny_bert, method="gradient", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert target.exists() != dangling and (dangling or target.read_text() == "")


def test_a_csv_with_a_long_field_and_a_deeply_nested_jsonl_line(tmp_path):
    long = "word " * 40_000  # 200 KB, beyond the csv module's default field limit
    (tmp_path / "a.csv").write_text(f'text\n"{long}"\nshort\n')
    rows = read_texts(tmp_path / "a.csv")
    assert [len(r.text) for r in rows] == [len(long), 5] and rows[0].error is None
    deep = '{"text": ' + "[" * 50_000 + "]" * 50_000 + "}"
    (tmp_path / "a.jsonl").write_text(deep + '\n{"text": "fine"}\n{"text": 1' + "0" * 5000 + "}\n")
    rows = read_texts(tmp_path / "a.jsonl")
    assert rows[0].error == "line 1 is nested too deeply to read"
    assert rows[1].error is None and rows[1].text == "fine"
    assert "not readable JSON" in rows[2].error


def test_other_settings_refuse_to_resume(tmp_path, tiny_bert):
    src = tmp_path / "in.txt"
    src.write_text("good\nbad\n")
    out = tmp_path / "out.jsonl"
    out.write_text("")
    sidecar = tmp_path / "out.jsonl.job.json"
    sidecar.write_text(json.dumps({"method": "occlusion"}))
    with pytest.raises(TextlensError, match="unfinished job with other settings"):
        explain_file(src, out, model=tiny_bert, method="gradient", progress=False)


@pytest.fixture(scope="module")
def slow_input(tmp_path_factory):
    folder = tmp_path_factory.mktemp("job")
    words = ["good", "bad", "dull", "bright", "slow", "sharp", "clever", "flat", "warm", "cold"]
    lines = [" ".join(words[(i + k) % 10] for k in range(4 + i % 9)) for i in range(80)]
    lines[13] = ""  # an error row
    (folder / "in.txt").write_text("\n".join(lines) + "\n")
    return folder / "in.txt"


def test_sigkill_then_resume(tmp_path, tiny_dir, slow_input):
    out = tmp_path / "out.jsonl"
    args = [
        "explain-file", str(slow_input), "--out", str(out), "--model", str(tiny_dir),
        "--method", "integrated-gradients", "--n-steps", "200", "--batch-size", "4",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([TEXTLENS, *args], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= 9:
            break
        if proc.poll() is not None:
            pytest.fail(f"the job ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(out.read_text().splitlines())
    assert 9 <= partial < 80, "the kill must land mid-job"
    assert (tmp_path / "out.jsonl.job.json").exists()

    done = run(*args, "--quiet", check=True)
    assert f"{partial - 1}" in done.stdout or "done earlier" in done.stdout
    rows = _rows(out)
    assert [r["row"] for r in rows] == list(range(80))  # every row exactly once, in order
    assert [r["row"] for r in rows if not r["ok"]] == [13]
    assert all(r["explanation"]["params"]["n_steps"] == 200 for r in rows if r["ok"])
    assert not (tmp_path / "out.jsonl.job.json").exists()


def test_cli_errors_are_one_line(tmp_path, tiny_dir):
    (tmp_path / "in.txt").write_text("good\n")
    src, out = str(tmp_path / "in.txt"), str(tmp_path / "o.jsonl")
    cases = [
        (["explain-file", str(tmp_path / "nope.txt"), "--out", out], "does not exist"),
        (["explain-file", src, "--out", str(tmp_path / "o.csv")], ".jsonl or .parquet"),
        (["explain-file", src, "--out", str(tmp_path / "no" / "o.jsonl")], "create it first"),
    ]
    for args, message in cases:
        proc = run(*args, "--model", str(tiny_dir), "--quiet")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


@pytest.mark.parametrize("batch_size", [1, 2])
def test_a_failing_row_alone_in_its_batch_is_an_error_row(tmp_path, tiny_bert, monkeypatch,
                                                          batch_size):  # fmt: skip
    """With --batch-size 1 (or a last batch of one row), a bad row must not abort the job."""
    import textlens.pipeline

    real = textlens.pipeline.explain_many

    def fussy(texts, *args, **kwargs):
        if any("BOOM" in t for t in texts):
            raise ValueError("this row breaks the model")
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(textlens.pipeline, "explain_many", fussy)
    src = tmp_path / "in.txt"
    src.write_text("a good film\nfine\nBOOM goes the film\n")
    out = tmp_path / "out.jsonl"
    summary = explain_file(
        src, out, model=tiny_bert, method="gradient", batch_size=batch_size, progress=False
    )
    rows = _rows(out)
    assert [r["row"] for r in rows] == [0, 1, 2]
    assert [r["ok"] for r in rows] == [True, True, False]
    assert rows[2]["error"] == "this row breaks the model"
    assert summary.failed == 1 and summary.explained == 2


@pytest.mark.slow
def test_a_demo_job_resumes_from_another_folder(tmp_path, monkeypatch):
    """``--model demo`` is recorded as the demo model, not as a folder called demo."""
    src = tmp_path / "in.txt"
    src.write_text("a good film\nfine\nnot good\n")
    out = tmp_path / "out.jsonl"
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()

    monkeypatch.chdir(first)
    with pytest.raises(KeyboardInterrupt):
        explain_file(src, out, model="demo", method="gradient", batch_size=1, progress=False,
                     on_batch=stop)  # fmt: skip
    assert json.loads((tmp_path / "out.jsonl.job.json").read_text())["model"] == "demo"
    monkeypatch.chdir(second)
    summary = explain_file(src, out, model="demo", method="gradient", batch_size=1,
                           progress=False)  # fmt: skip
    assert summary.done_before == 1 and summary.total == 3 and summary.failed == 0


# -- hostile input and faults ---------------------------------------------------------------------
def _names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "banana"}, "unknown label 'banana'"),
        ({"model": "/missing/model"}, "does not exist"),
        ({"settings": {"n_steps": 0}}, "at least 1"),
        ({"batch_size": 0}, "batch_size=0 is not valid"),
        ({"encoding": "klingon"}, "unknown encoding"),
    ],
)
def test_refused_before_any_file_is_made(tmp_path, tiny_bert, kwargs, message):
    src = tmp_path / "in.txt"
    src.write_text("a good film\nfine\n")
    out = tmp_path / "out.jsonl"
    args = {"model": tiny_bert, "method": "integrated-gradients", "progress": False, **kwargs}
    with pytest.raises(TextlensError, match=message):
        explain_file(src, out, **args)
    assert _names(tmp_path) == ["in.txt"]
    args.update(model=tiny_bert, target=None, settings={"n_steps": 4}, batch_size=2)
    args.pop("encoding", None)
    summary = explain_file(src, out, **args)  # the corrected command runs
    assert summary.explained == 2 and _names(tmp_path) == ["in.txt", "out.jsonl"]


def test_cli_target_refused_before_any_file(tmp_path, tiny_dir):
    (tmp_path / "in.txt").write_text("good\n")
    out = tmp_path / "o.jsonl"
    proc = run("explain-file", str(tmp_path / "in.txt"), "--out", str(out), "--model",
               str(tiny_dir), "--target", "banana", "--quiet")  # fmt: skip
    assert proc.returncode == 2 and "unknown label 'banana'" in proc.stderr
    assert _names(tmp_path) == ["in.txt"]


def test_a_second_job_on_the_same_output_is_refused(tmp_path, tiny_bert):
    from filelock import FileLock

    src = tmp_path / "in.txt"
    src.write_text("good\nbad\n")
    out = tmp_path / "out.jsonl"
    held = FileLock(str(tmp_path / "out.jsonl.lock"))  # as a running job holds it
    with held, pytest.raises(TextlensError, match=r"another job is writing .* right now"):
        explain_file(src, out, model=tiny_bert, method="gradient", progress=False)
    assert not out.exists()
    explain_file(src, out, model=tiny_bert, method="gradient", progress=False)
    assert _names(tmp_path) == ["in.txt", "out.jsonl"]


def test_full_disk_is_one_line_and_the_job_resumes(tmp_path, tiny_bert, monkeypatch):
    import errno as errnos

    import textlens.jobs

    src = tmp_path / "in.txt"
    src.write_text("\n".join(f"film number {i}" for i in range(6)) + "\n")
    out = tmp_path / "out.jsonl"
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errnos.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(textlens.jobs.os, "fsync", fsync)
    with pytest.raises(TextlensError, match=r"the disk is full .* run the same command again"):
        explain_file(src, out, model=tiny_bert, method="gradient", batch_size=2, progress=False)
    monkeypatch.setattr(textlens.jobs.os, "fsync", real_fsync)
    summary = explain_file(src, out, model=tiny_bert, method="gradient", batch_size=2,
                           progress=False)  # fmt: skip
    assert [r["row"] for r in _rows(out)] == list(range(6)) and summary.done_before >= 2


def test_resume_removes_stale_temporary_files_and_stray_rows(tmp_path, tiny_bert):
    src, out = _interrupted_job(tmp_path, tiny_bert)
    (tmp_path / ".out.jsonl.x1y2z3ab").write_text("half of a final rewrite")  # killed at rename
    with open(out, "a") as journal:
        journal.write('{"row": 5000, "ok": true}\n')
    with pytest.warns(UserWarning, match="ignored 1 line"):
        summary = explain_file(src, out, model=tiny_bert, method="gradient", progress=False)
    assert summary.ignored == 1 and summary.total == 3
    assert [r["row"] for r in _rows(out)] == [0, 1, 2]
    assert _names(tmp_path) == ["in.txt", "out.jsonl"]


def test_rows_that_do_not_decode_are_error_rows(tmp_path, tiny_bert):
    src = tmp_path / "in.txt"
    src.write_bytes("a good film\ncaf\xe9 au lait\nfine\n".encode("latin-1"))
    out = tmp_path / "out.jsonl"
    explain_file(src, out, model=tiny_bert, method="gradient", progress=False)
    rows = _rows(out)
    assert [r["ok"] for r in rows] == [True, False, True]
    assert "not valid utf-8" in rows[1]["error"] and "--encoding" in rows[1]["error"]
    again = tmp_path / "again.jsonl"
    explain_file(src, again, model=tiny_bert, method="gradient", encoding="latin-1",
                 progress=False)  # fmt: skip
    assert [r["ok"] for r in _rows(again)] == [True, True, True]
    assert _rows(again)[1]["text"] == "café au lait"
    (tmp_path / "s.jsonl").write_text('{"text": "good \\ud800 film"}\n{"text": "fine"}\n')
    explain_file(tmp_path / "s.jsonl", tmp_path / "s-out.jsonl", model=tiny_bert,
                 method="gradient", progress=False)  # fmt: skip
    assert [r["ok"] for r in _rows(tmp_path / "s-out.jsonl")] == [False, True]

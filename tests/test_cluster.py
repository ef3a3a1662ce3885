"""explain-file on Ray Data: same rows as the local engine, every row exactly once after a killed
driver or a killed worker, error rows kept, other jobs refused. Ray runs locally (loopback only,
started by the job itself), and every test stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import ray

from conftest import TEXTLENS
from textlens import cluster
from textlens.cluster import MANIFEST
from textlens.data import rotten_tomatoes
from textlens.errors import TextlensError
from textlens.jobs import RayOptions, explain_file


@pytest.fixture(scope="module", autouse=True)
def _one_local_ray():
    """Every job starts (once) its own local Ray, whatever the environment says; Ray Data cannot
    start again in a process whose Ray was shut down, so the jobs of this module share it and it
    stops at the end."""
    address = os.environ.pop("RAY_ADDRESS", None)
    yield
    cluster.stop()
    assert not ray.is_initialized()
    if address is not None:
        os.environ["RAY_ADDRESS"] = address


def _input(path: Path, n: int, bad_line: int | None = None) -> Path:
    lines = [json.dumps({"text": t}) for t in rotten_tomatoes("test").texts[:n]]
    if bad_line is not None:
        lines.insert(bad_line, "{this is not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows(output: Path) -> list[dict]:
    if output.is_dir():
        tables = [pq.read_table(p).to_pylist() for p in sorted(output.glob("part-*.parquet"))]
        return [r for t in tables for r in t]
    return pq.read_table(output).to_pylist()


def _scores(row: dict) -> np.ndarray:
    return np.asarray(json.loads(row["explanation"])["scores"], float)


@pytest.mark.parametrize("method", ["gradient", "smoothgrad"])
def test_ray_rows_equal_the_local_engine(tmp_path, tiny_dir, method):
    data = _input(tmp_path / "in.jsonl", 37, bad_line=5)
    common = dict(model=tiny_dir, method=method, progress=False, batch_size=4)
    explain_file(data, tmp_path / "local.parquet", **common)
    summary = explain_file(data, tmp_path / "ray", engine="ray",
                           ray=RayOptions(workers=1, block_rows=10), **common)  # fmt: skip
    assert ray.is_initialized(), "the Ray the job started stays up for the next job"
    local, remote = _rows(tmp_path / "local.parquet"), _rows(tmp_path / "ray")
    assert [r["row"] for r in remote] == list(range(38)) == [r["row"] for r in local]
    assert (summary.total, summary.failed) == (38, 1)
    for a, b in zip(local, remote, strict=True):
        assert (a["id"], a["text"], a["ok"], a["error"], a["label"]) == (
            b["id"], b["text"], b["ok"], b["error"], b["label"],
        )  # fmt: skip
        if a["ok"]:
            np.testing.assert_allclose(_scores(b), _scores(a), rtol=1e-6, atol=1e-9)
    assert "not JSON" in remote[5]["error"]
    manifest = json.loads((tmp_path / "ray" / MANIFEST).read_text())
    assert manifest["complete"] and manifest["blocks"] == 4 and manifest["failed"] == 1


def _bad_lines(path: Path) -> Path:
    """A .jsonl input with an empty text, bytes that are not UTF-8 and a line that is not JSON."""
    lines = [b'{"text": "a good film"}', b'{"text": ""}', b'{"text": "caf\xe9 au lait"}',
             b"{this is not json", b'{"text": "fine"}']  # fmt: skip
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_error_rows_are_the_same_in_every_engine_and_format(tmp_path, tiny_dir):
    data = _bad_lines(tmp_path / "in.jsonl")
    common = dict(model=tiny_dir, method="gradient", progress=False, batch_size=2)
    explain_file(data, tmp_path / "local.jsonl", **common)
    explain_file(data, tmp_path / "local.parquet", **common)
    explain_file(data, tmp_path / "ray", engine="ray", ray=RayOptions(workers=1, block_rows=2),
                 **common)  # fmt: skip
    outputs = {
        "jsonl": [json.loads(line) for line in (tmp_path / "local.jsonl").read_text().splitlines()],
        "parquet": _rows(tmp_path / "local.parquet"),
        "ray": _rows(tmp_path / "ray"),
    }
    for rows in outputs.values():
        assert [r["ok"] for r in rows] == [True, False, False, False, True]
        assert rows[2]["text"] == "caf\ufffd au lait" and "--encoding" in rows[2]["error"]
    keys = ("row", "id", "text", "ok", "error", "label")
    for name in ("parquet", "ray"):
        for a, b in zip(outputs["jsonl"], outputs[name], strict=True):
            assert tuple(a[k] for k in keys) == tuple(b[k] for k in keys), name


def _wait_for_shards(folder: Path, count: int, timeout: float, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("part-*.parquet"))) < count:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the job ended before it could be killed: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {count} shard(s) after {timeout} s")
        time.sleep(0.1)


def test_a_killed_driver_resumes_with_every_row_once(tmp_path, tiny_dir):
    data = _input(tmp_path / "in.jsonl", 120)
    out = tmp_path / "out"
    args = [
        TEXTLENS, "explain-file", str(data), "--out", str(out), "--model", str(tiny_dir),
        "--method", "integrated-gradients", "--n-steps", "64", "--engine", "ray",
        "--workers", "1", "--block-rows", "8", "--quiet",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_shards(out, 2, timeout=240, proc=proc)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    manifest = json.loads((out / MANIFEST).read_text())
    assert not manifest["complete"]
    partial = len(list(out.glob("part-*.parquet")))
    assert 2 <= partial < 15, "the kill must land mid-job"
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "120 rows, 120 explained, 0 failed" in again.stdout
    rows = _rows(out)
    assert sorted(r["row"] for r in rows) == list(range(120))
    assert [r["text"] for r in rows] == list(rotten_tomatoes("test").texts[:120])
    assert json.loads((out / MANIFEST).read_text())["complete"]


def _worker_pids() -> list[int]:
    """Processes whose title names the worker class (Ray titles actor processes by class)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and b"BlockExplainer" in title:
            found.append(int(proc.name))
    return found


def test_a_killed_worker_is_replaced_and_every_row_written_once(tmp_path, tiny_dir):
    data = _input(tmp_path / "in.jsonl", 80)
    out = tmp_path / "out"
    result: dict = {}

    def job() -> None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result["summary"] = explain_file(
                    data, out, model=tiny_dir, method="integrated-gradients",
                    settings={"n_steps": 64}, engine="ray",
                    ray=RayOptions(workers=1, block_rows=8),
                    progress=False,
                )  # fmt: skip
            result["warnings"] = [str(w.message) for w in caught]
        except BaseException as error:  # handed to the test's thread
            result["error"] = error

    runner = threading.Thread(target=job, daemon=True)
    runner.start()
    _wait_for_shards(out, 1, timeout=240)
    workers = _worker_pids()
    assert workers, "a worker actor runs the job"
    shards_at_kill = len(list(out.glob("part-*.parquet")))
    os.kill(workers[0], signal.SIGKILL)
    runner.join(timeout=600)
    assert not runner.is_alive()
    assert "error" not in result, result.get("error")
    assert result["summary"].explained == 80
    assert shards_at_kill < 10, "the kill landed mid-job"
    assert not Path(f"/proc/{workers[0]}").exists() or workers[0] not in _worker_pids()
    rows = _rows(out)
    assert sorted(r["row"] for r in rows) == list(range(80))


def test_another_job_on_the_same_folder_is_refused(tmp_path, tiny_dir):
    data = _input(tmp_path / "in.jsonl", 12)
    out = tmp_path / "out"
    explain_file(data, out, model=tiny_dir, method="gradient", engine="ray", progress=False)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(TextlensError, match=r"holds another job \(methods differ\)"):
        explain_file(data, out, model=tiny_dir, method="gradient-x-input", engine="ray")
    assert sorted(p.name for p in out.iterdir()) == before
    again = explain_file(data, out, model=tiny_dir, method="gradient", engine="ray")
    assert (again.done_before, again.explained) == (12, 12), "a finished job is not redone"


def test_ray_engine_refuses_bad_options_before_anything_is_written(tmp_path, tiny_dir, monkeypatch):
    def no_ray(address):
        raise AssertionError("Ray was started for a job that was refused")

    monkeypatch.setattr(cluster, "_ensure_ray", no_ray)
    data = _input(tmp_path / "in.jsonl", 3)
    (tmp_path / "file").write_text("x")
    cases = [
        (dict(output=tmp_path / "file"), "is a file"),
        (dict(ray=RayOptions(workers=0)), "workers=0 is not valid"),
        (dict(ray=RayOptions(gpus_per_worker=-1)), "gpus_per_worker=-1 is not valid"),
        (dict(model=object()), "give a model folder"),
    ]
    for kwargs, message in cases:
        kwargs = {"output": tmp_path / "out", "model": tiny_dir, **kwargs}
        with pytest.raises(TextlensError, match=message):
            explain_file(data, engine="ray", **kwargs)
        assert not (tmp_path / "out").exists()


def test_one_process_keeps_one_ray(monkeypatch):
    cluster._ensure_ray(None)
    assert ray.is_initialized()
    cluster._ensure_ray(None)  # the next job reuses it
    with pytest.raises(TextlensError, match="already runs its jobs on Ray at this machine"):
        cluster._ensure_ray("10.0.0.1:6379")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setitem(cluster._SESSION, "stopped", True)
    with pytest.raises(TextlensError, match="cannot start again here: run the job in a new"):
        cluster._ensure_ray(None)


def test_without_ray_the_engine_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("ray") else real(name, *a),
    )
    with pytest.raises(TextlensError, match=r"pip install 'textlens\[ray\]'"):
        explain_file(tmp_path / "in.txt", tmp_path / "out", engine="ray")


def test_default_blocks_keep_workers_busy_and_follow_the_input_only():
    from textlens.cluster import blocks_of, default_block_rows

    assert default_block_rows(400, 16) == 16
    assert default_block_rows(2000, 16) == 32
    assert default_block_rows(1_000_000, 16) == 256
    assert default_block_rows(3, 16) == 16
    assert blocks_of(35, 16) == [(0, 16), (16, 32), (32, 35)]

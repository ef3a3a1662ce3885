"""Batch jobs over files: explain every row of a .txt / .jsonl / .csv into .jsonl or .parquet.

A job is resumable. Finished rows are appended to a journal (the ``.jsonl`` output itself, or
``OUT.partial.jsonl`` for parquet) and flushed to disk after every batch; a sidecar
``OUT.job.json`` records the job's arguments. Started again with the same arguments after Ctrl-C
or ``kill -9``, the job drops a half-written last line, skips the rows already done, and carries
on. At the end the rows are written in input order through a temporary file and a rename, and the
sidecar is removed: every input row is in the output exactly once, failed rows with their error.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textlens.data import InputRow, input_files, read_inputs
from textlens.errors import TextlensError
from textlens.rows import JobSummary, explain_chunk, result_row, write_parquet

OUTPUT_SUFFIXES = (".jsonl", ".parquet")


@dataclass(frozen=True)
class RayOptions:
    """Where and how the Ray engine runs (``engine="ray"``).

    Attributes:
        address: The Ray cluster to join (default: ``RAY_ADDRESS``, else Ray on this machine).
        workers: Ray workers (default: one per ``gpus_per_worker`` GPUs, else one per two
            CPUs).
        gpus_per_worker: GPUs each worker asks for (0: CPUs only).
        block_rows: Rows per block, the unit of work and of resumption (default: about 64
            blocks, from one batch to 256 rows).
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    block_rows: int | None = None

    def given(self) -> list[str]:
        """The options set away from their defaults."""
        values = {
            "address": self.address, "workers": self.workers, "block_rows": self.block_rows,
            "gpus_per_worker": self.gpus_per_worker or None,
        }  # fmt: skip
        return [k for k, v in values.items() if v is not None]


def _fingerprint(paths: Sequence[Path]) -> str:
    """A hash of the input's bytes (and, for several files, of their names and order)."""
    digest = hashlib.sha256()
    for path in paths:
        if len(paths) > 1:
            digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _lock_path(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


def _paths(output: Path) -> tuple[Path, Path]:
    journal = (
        output if output.suffix == ".jsonl" else output.with_name(output.name + ".partial.jsonl")
    )
    return journal, output.with_name(output.name + ".job.json")


def _recover(journal: Path, n_rows: int) -> tuple[dict[int, dict[str, Any]], int, int]:
    """Rows already in the journal, how many lines were ignored, and how many were dropped.

    A half-written last line (a killed writer) is cut off, and a line that cannot be read for
    any reason (not JSON, nested too deeply, not a result row) is dropped from the journal, so
    that its row is explained again; a line for a row that is not in the input (0..n_rows-1) is
    ignored (and kept).
    """
    from textlens.data import parse_json
    from textlens.render.export import write_atomic

    done: dict[int, dict[str, Any]] = {}
    ignored = dropped = 0
    if not journal.exists():
        return done, ignored, dropped
    kept: list[bytes] = []
    torn = False
    with open(journal, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                torn = True  # only the last line can lack its newline
                break
            item, problem = parse_json(raw)
            if problem is not None or not _is_result_row(item):
                dropped += 1
                continue
            kept.append(raw)
            row = item["row"]
            if 0 <= row < n_rows:
                done.setdefault(row, item)
            else:
                ignored += 1
    if dropped:
        write_atomic(journal, b"".join(kept))
    elif torn:
        with open(journal, "r+b") as handle:
            handle.truncate(sum(len(raw) for raw in kept))
    return done, ignored, dropped


def _is_result_row(item: Any) -> bool:
    """Whether a journal line holds a result row (as ``_result_row`` writes them)."""
    if not isinstance(item, dict) or not {"row", "ok"} <= set(item):
        return False
    row = item["row"]
    return isinstance(row, int) and not isinstance(row, bool) and isinstance(item["ok"], bool)


def _check_not_links(*paths: Path) -> None:
    """Refuse job files that are symbolic links (a write would go through to their target)."""
    for path in paths:
        if path.is_symlink():
            raise TextlensError(
                f"{path} is a symbolic link: give the real path of the output "
                f"({path.resolve()}), or another --out"
            )


def _check_output(output: Path, sidecar: Path, journal: Path, job: dict[str, Any]) -> None:
    if output.suffix not in OUTPUT_SUFFIXES:
        raise TextlensError(f"cannot write {output.name}: use a .jsonl or .parquet output")
    if not output.parent.exists():
        raise TextlensError(f"folder {output.parent} does not exist: create it first")
    _check_not_links(output, journal, sidecar, _lock_path(output))
    if sidecar.exists():
        from textlens.data import parse_json

        before, problem = parse_json(sidecar.read_bytes())
        if problem is not None or not isinstance(before, dict):
            raise TextlensError(
                f"{sidecar} cannot be read ({problem or 'not a job'}): delete it and "
                f"{output} to start the job again"
            )
        changed = sorted(k for k in set(job) | set(before) if job.get(k) != before.get(k))
        if changed:
            raise TextlensError(
                f"{output.name} holds an unfinished job with other settings "
                f"({', '.join(changed)}): run it with the same arguments to finish it, "
                "or choose another --out"
            )
    elif output.exists() or journal.exists():
        raise TextlensError(
            f"{output} already exists and is not an unfinished job: "
            "delete it or choose another --out"
        )


def _model_name(model: Any) -> str:
    """How the job records its model: ``demo``, a folder's absolute path, or the object's text."""
    if model is None or model == "demo":
        return "demo"
    if isinstance(model, str | Path):
        return str(Path(model).resolve())
    return str(model)


def explain_file(
    input_path: str | Path,
    output: str | Path,
    request: Any = None,
    *,
    model: Any = None,
    dtype: str | None = None,
    column: str = "text",
    id_column: str | None = None,
    encoding: str = "utf-8",
    batch_size: int = 16,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
    engine: str = "local",
    ray: RayOptions | None = None,
    **fields: Any,
) -> JobSummary:
    """Explain every row of ``input_path`` into ``output`` (.jsonl or .parquet), resumably.

    Everything is checked (input, output, request, model, target) before any file is made, and
    the output is locked while the job runs, so a second job on it is refused in one line.

    Args:
        input_path: ``.txt`` (a text a line), ``.jsonl``, ``.csv`` or ``.parquet`` (the
            ``column`` field); or a folder or glob pattern of them, read in name order as one
            input. The job's own files are never read as input.
        output: ``.jsonl`` (one JSON object a row) or ``.parquet`` (the explanation as a JSON
            string column); with ``engine="ray"``, a folder of Parquet shards and a manifest
            (see ``textlens.cluster``). Each row holds ``row`` (0-based input position), ``id``,
            ``text``, ``ok``, ``error``, ``label``, ``probability`` and ``explanation`` (an
            Explanation's JSON, or a Generation's for an answer, whose text is the label).
        request: What to ask of every row (``textlens.request.Request``, or its fields as a
            mapping): method, settings, target, unit, an answer to generate...; ``fields`` are
            added to it (``method=NAME``, ``settings={NAME: VALUE}``).
        model: As for ``explain``; a folder path is recorded so that a resumed job can check it.
        dtype: Load the model's weights in this dtype (as ``load_model``).
        column, id_column, encoding: How the input is read; rows that do not decode become
            error rows.
        batch_size: Texts per model batch (and per flush to disk).
        progress: Show a progress bar with rate and ETA on standard error.
        on_batch: Called with the number of rows written so far after each flush (the Ray
            engine: after each block).
        engine: ``local`` (this process) or ``ray`` (a pool of Ray actors, see ``ray``).
        ray: ``RayOptions`` for the Ray engine.
    """
    from filelock import FileLock, Timeout

    request = _job_request(request, fields)
    ray = ray or RayOptions()
    if engine not in ("local", "ray"):
        raise TextlensError(f"engine={engine!r} is not valid: use local or ray")
    if engine == "local" and ray.given():
        names = ", ".join("--" + k.replace("_", "-") for k in ray.given())
        raise TextlensError(
            f"{names} only apply to --engine ray: add --engine ray, or leave them out"
        )
    if engine == "ray":
        from textlens.cluster import require_ray

        require_ray()
        _check_ray_options(model, ray)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TextlensError(f"batch_size={batch_size!r} is not valid: use a whole number >= 1")
    input_path, output = Path(input_path), Path(output)
    journal, sidecar = _paths(output)
    if engine == "ray":
        _check_not_links(output)
    # the job's own files are never read as its input (an output inside the input folder)
    own = (output,) if engine == "ray" else (output, journal, sidecar, _lock_path(output))
    files = input_files(input_path, own)
    rows = read_inputs(input_path, column, id_column, encoding, own)
    request = _with_corpus(request, rows, model)
    job = {
        "input": str(input_path.resolve()),
        "input_sha256": _fingerprint(files),
        "model": _model_name(model),
        "dtype": dtype,
        **json.loads(json.dumps(request.to_dict(), default=str)),  # what each row is asked
        "column": column,
        "id_column": id_column,
        "encoding": encoding,
    }
    if engine == "ray":
        from textlens.cluster import check_folder, default_block_rows

        block_rows = ray.block_rows or default_block_rows(len(rows), batch_size)
        ray = dataclasses.replace(ray, block_rows=block_rows)
        job["block_rows"] = block_rows
        check_folder(output, job)
    else:
        _check_output(output, sidecar, journal, job)
    adapter = _load_and_check(model, dtype, request, rows, batch_size)
    if engine == "ray":
        from textlens.cluster import run_on_ray

        named = None if job["model"] == "demo" else job["model"]
        return run_on_ray(
            rows, output, job, request, model=named, dtype=dtype, batch_size=batch_size, ray=ray,
            progress=progress, on_block=on_batch,
        )  # fmt: skip
    lock = FileLock(str(_lock_path(output)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise TextlensError(
            f"another job is writing {output} right now: wait for it to finish, or choose "
            "another --out"
        ) from None
    try:
        _check_output(output, sidecar, journal, job)  # again, now that no other job runs
        return _run_job(
            rows, output, journal, sidecar, job, adapter, request, batch_size, progress, on_batch
        )
    except OSError as error:
        if _disk_full(error):
            raise TextlensError(
                f"the disk is full (writing {output}): the rows done so far are saved; free "
                "some space and run the same command again to carry on"
            ) from error
        raise
    finally:
        Path(lock.lock_file).unlink(missing_ok=True)  # still held: nobody else can have it
        lock.release()


def _job_request(request: Any, fields: dict[str, Any]) -> Any:
    """The job's Request (its template: the rows give the texts), checked."""
    from textlens.request import Request

    if request is None:
        request = Request.from_fields(fields)
    elif isinstance(request, Mapping):
        request = Request.from_fields({**request, **fields})
    elif fields:
        request = Request.from_fields({**request.to_dict(), **fields})
    if request.text is not None:
        raise TextlensError("a job's texts come from its input: leave the request's text out")
    request.check()
    if len(request.methods) != 1:
        raise TextlensError("a job explains with one method: give one --method")
    return request


def _with_corpus(request: Any, rows: Sequence[InputRow], model: Any) -> Any:
    """A method that takes reference statistics from a corpus gets the input's texts (they
    stand for the user's data), when the user gave none."""
    from textlens.corpus import run_corpus
    from textlens.methods.base import describe

    corpus = describe(type(request.built[0]), "corpus_setting")
    if not corpus or request.settings.get(corpus) is not None:
        return request
    key = run_corpus([r.text for r in rows if r.error is None], _model_name(model))
    if key is None:
        return request
    return dataclasses.replace(request, settings={**request.settings, corpus: key})


def _check_ray_options(model: Any, ray: RayOptions) -> None:
    if model is not None and not isinstance(model, str | Path):
        raise TextlensError(
            "the Ray engine loads the model in each worker: give a model folder (or None for "
            "the demo classifier), not a loaded model"
        )
    workers, gpus, block_rows = ray.workers, ray.gpus_per_worker, ray.block_rows
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise TextlensError(f"workers={workers!r} is not valid: use a whole number >= 1")
    if not isinstance(gpus, int | float) or not 0 <= gpus <= 64:
        raise TextlensError(f"gpus_per_worker={gpus!r} is not valid: use a number from 0 to 64")
    if block_rows is not None and (
        isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1
    ):
        raise TextlensError(f"block_rows={block_rows!r} is not valid: use a whole number >= 1")


def _disk_full(error: BaseException) -> bool:
    causes = [error, error.__cause__]
    return any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in causes)


def _load_and_check(
    model: Any, dtype: str | None, request: Any, rows: Sequence[InputRow], batch_size: int
) -> Any:
    """Load the model; bind the target on one text and check the memory of a batch of the
    longest texts: a bad --model, --target or setting fails here, before any file is made."""
    from textlens.adapters.loading import load_model
    from textlens.pipeline import check_cost, check_target

    adapter = load_model(model, dtype=dtype)
    texts = [r.text for r in rows if r.error is None]
    goal = request.goal(adapter)  # the model's task against the request (an answer, contrast)
    if request.answer or request.pair is not None:
        return adapter
    check_target(adapter, goal, texts[:8], max_length=request.max_length)
    check_cost(adapter, request.built[0], texts, batch_size=batch_size,
               max_length=request.max_length, max_memory=request.max_memory)  # fmt: skip
    return adapter


def _run_job(
    rows: Sequence[InputRow],
    output: Path,
    journal: Path,
    sidecar: Path,
    job: dict[str, Any],
    adapter: Any,
    request: Any,
    batch_size: int,
    progress: bool,
    on_batch: Callable[[int], None] | None,
) -> JobSummary:
    from tqdm.auto import tqdm

    from textlens.render.export import write_atomic

    if sidecar.exists():
        _remove_stale_temporaries(output, sidecar)
    else:
        write_atomic(sidecar, json.dumps(job, indent=2) + "\n")
    done, ignored, dropped = _recover(journal, len(rows))
    if ignored:
        warnings.warn(
            f"ignored {ignored} line(s) of {journal.name} for rows that are not in the input",
            stacklevel=3,
        )
    if dropped:
        warnings.warn(
            f"dropped {dropped} unreadable line(s) of {journal.name}; their rows are explained "
            "again",
            stacklevel=3,
        )
    todo = [r for r in rows if r.row not in done]
    done_before = len(done)
    bar = tqdm(
        total=len(rows),
        initial=done_before,
        unit="text",
        desc="explaining",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    with open(journal, "a", encoding="utf-8") as sink:

        def flush(results: Sequence[dict[str, Any]]) -> None:
            for r in results:
                sink.write(json.dumps(r, allow_nan=False) + "\n")
                done[r["row"]] = r
            sink.flush()
            os.fsync(sink.fileno())
            bar.update(len(results))
            if on_batch is not None:
                on_batch(len(done))

        broken = [r for r in todo if r.error is not None]
        if broken:
            flush([result_row(r, error=r.error) for r in broken])
        good = [r for r in todo if r.error is None]
        for start in range(0, len(good), batch_size):
            flush(explain_chunk(good[start : start + batch_size], adapter, request))
    bar.close()
    _finish(output, journal, sidecar, done, len(rows))
    failed = sum(1 for r in done.values() if not r["ok"])
    return JobSummary(len(rows), done_before, len(rows) - failed, failed, output, ignored)


def _remove_stale_temporaries(output: Path, sidecar: Path) -> None:
    """Temporary files of this job's atomic writes left by a kill (``.NAME.xxxxxxxx``)."""
    for name in (output.name, sidecar.name):
        for stale in output.parent.glob(f".{name}.*"):
            if stale.is_file() and stale.name != f".{sidecar.name}":
                stale.unlink(missing_ok=True)


def _finish(
    output: Path, journal: Path, sidecar: Path, done: dict[int, dict[str, Any]], total: int
) -> None:
    """Rewrite the rows in input order (atomically), then drop the journal and the sidecar."""
    from textlens.render.export import write_atomic

    if len(done) != total:  # pragma: no cover - guarded by the loop above
        raise TextlensError(f"{len(done)} of {total} rows were written; run the job again")
    ordered = [done[i] for i in sorted(done)]
    if output.suffix == ".jsonl":
        write_atomic(output, "".join(json.dumps(r, allow_nan=False) + "\n" for r in ordered))
    else:
        write_parquet(output, ordered)
        journal.unlink()
    sidecar.unlink()

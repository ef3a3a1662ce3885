"""explain-file on Ray Data: a corpus explained by a pool of Ray actors into Parquet shards.

The driver reads and checks the input, cuts its rows into blocks of ``block_rows`` (by row
number, so the cut depends on the job only), and hands the blocks that are not finished to a Ray
Data pipeline whose workers are actors: each loads the model once, explains its block in
length-sorted batches, and writes the block as ``part-NNNNNN.parquet`` through a temporary file
and a rename. A block's shard either exists whole or not at all, so a job killed at any moment
(the driver, or a worker) and started again with the same arguments explains only the missing
blocks, and every input row ends up in exactly one shard. ``_textlens_job.json`` (the manifest)
records the job's arguments and the input's fingerprint; a different job on the same folder is
refused. The shards hold the same columns as the local engine's Parquet output, in input order
when read by name (``pandas.read_parquet(OUT)`` reads them all; the manifest and temporary
files start with ``_`` or ``.``, which Parquet readers skip).

Results equal the local engine's: a text's explanation does not depend on its batch companions
(deterministic methods within float noise, seeded methods seed each text alone), and the seed
follows the row, not the worker.

Ray is started (or joined) once per Python process: the next job in the same process reuses it,
and it stops when the process ends or at ``stop()``. Ray Data cannot run again in a process
whose Ray was shut down, so after ``stop()`` a further job needs a new process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textlens.data import InputRow
from textlens.errors import TextlensError

MANIFEST = "_textlens_job.json"
SCHEMA = "textlens.corpus-job/1"
BLOCK_ROWS = 256
"""The largest default block; smaller inputs get smaller blocks (``default_block_rows``)."""
ATTEMPTS = 3
"""Passes in a row that may fail without finishing a block before the job gives up."""
PASSED_ENVIRONMENT = ("TEXTLENS_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME")


def require_ray() -> None:
    """A one-line error when Ray is not installed."""
    import importlib.util

    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
        raise TextlensError(
            "--engine ray needs Ray Data: pip install 'textlens[ray]' (or use --engine local)"
        )


def default_block_rows(n_rows: int, batch_size: int) -> int:
    """Rows per block when none is given: about 64 blocks (so that workers stay evenly busy to
    the end), at least one batch and at most ``BLOCK_ROWS``. It depends on the input only, so a
    job resumed with another number of workers cuts the same blocks."""
    return max(1, min(BLOCK_ROWS, max(batch_size, math.ceil(n_rows / 64))))


def shard_name(block: int) -> str:
    return f"part-{block:06d}.parquet"


def blocks_of(n_rows: int, block_rows: int) -> list[tuple[int, int]]:
    """The (start, stop) row ranges of the job's blocks."""
    return [(s, min(s + block_rows, n_rows)) for s in range(0, n_rows, block_rows)]


def check_folder(output: Path, job: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse an output that is a file, a folder of something else, or another job's folder;
    return the manifest of this job when the folder holds it (finished or not)."""
    if output.exists() and not output.is_dir():
        raise TextlensError(
            f"{output} is a file: the Ray engine writes a folder of Parquet shards; choose a "
            "folder name for --out"
        )
    if not output.parent.exists():
        raise TextlensError(f"folder {output.parent} does not exist: create it first")
    manifest = output / MANIFEST
    if manifest.exists():
        try:
            before = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise TextlensError(
                f"{manifest} cannot be read: delete the folder {output} or choose another --out"
            ) from None
        old = before.get("job", {}) if isinstance(before, dict) else {}
        changed = sorted(k for k in set(job) | set(old) if job.get(k) != old.get(k))
        if changed:
            raise TextlensError(
                f"{output} holds another job ({', '.join(changed)} differ): run that job's "
                "command to finish it, or choose another --out"
            )
        return before
    if output.exists() and any(not p.name.startswith(".") for p in output.iterdir()):
        raise TextlensError(
            f"{output} is a folder that holds other files: choose an empty or new folder for --out"
        )
    return None


def finished_blocks(output: Path, blocks: Sequence[tuple[int, int]]) -> set[int]:
    """Blocks whose shard is on disk with the block's rows (a shard is written whole)."""
    import pyarrow.parquet as pq

    done = set()
    for b, (start, stop) in enumerate(blocks):
        path = output / shard_name(b)
        if not path.exists():
            continue
        try:
            if pq.read_metadata(path).num_rows == stop - start:
                done.add(b)
        except Exception:  # a shard that is not Parquet is explained again and replaced
            continue
    return done


def _remove_temporaries(output: Path) -> None:
    for stale in output.glob(".part-*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)


class BlockExplainer:
    """A Ray Data worker: loads the model once; each call explains one block and writes it."""

    def __init__(
        self,
        output: str,
        model: Any,
        request: dict[str, Any],
        batch_size: int,
        threads: int,
        environment: dict[str, str],
        corpora: dict[str, list[str]],
        device: str = "cpu",
        dtype: str | None = None,
    ) -> None:
        os.environ.update(environment)
        import torch

        from textlens.adapters.loading import load_model
        from textlens.corpus import restore
        from textlens.request import Request

        torch.set_num_threads(max(1, threads))
        for key, texts in corpora.items():
            restore(key, texts)
        self.output = Path(output)
        self.adapter = load_model(model, device=device, dtype=dtype)  # its own GPUs
        self.request = Request.from_fields(request)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[int]]:
        from textlens.rows import explain_rows, write_parquet

        blocks, counts, failed = [], [], []
        for block, payload in zip(batch["block"], batch["rows"], strict=True):
            rows = [
                InputRow(r[0], r[1], r[2], r[3], tuple(r[4]) if len(r) > 4 and r[4] else None)
                for r in json.loads(payload)
            ]
            results = explain_rows(rows, self.adapter, self.request, self.batch_size)
            write_parquet(self.output / shard_name(int(block)), results)
            blocks.append(int(block))
            counts.append(len(results))
            failed.append(sum(1 for r in results if not r["ok"]))
        return {"block": blocks, "rows": counts, "failed": failed}


def run_on_ray(
    rows: Sequence[InputRow],
    output: Path,
    job: dict[str, Any],
    request: Any,
    *,
    model: Any,
    batch_size: int,
    ray: Any,
    progress: bool,
    on_block: Callable[[int], None] | None,
    dtype: str | None = None,
) -> Any:
    """Run the job's unfinished blocks on Ray (``ray``: the job's ``RayOptions``) and write the
    manifest; see the module's text."""
    from filelock import FileLock, Timeout

    from textlens.render.export import write_atomic
    from textlens.rows import JobSummary

    blocks = blocks_of(len(rows), ray.block_rows)
    manifest = {
        "schema": SCHEMA,
        "job": job,
        "rows": len(rows),
        "block_rows": ray.block_rows,
        "blocks": len(blocks),
        "complete": False,
    }
    output.mkdir(exist_ok=True)
    lock = FileLock(str(output / ".lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise TextlensError(
            f"another job is writing {output} right now: wait for it to finish, or choose "
            "another --out"
        ) from None
    try:
        before = check_folder(output, job)  # again, now that no other job runs
        if before is None:
            write_atomic(output / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        _remove_temporaries(output)
        done = finished_blocks(output, blocks)
        done_before = sum(blocks[b][1] - blocks[b][0] for b in done)
        if len(done) < len(blocks):
            _execute(
                rows, output, blocks, done, model=model, request=request, batch_size=batch_size,
                ray=ray, progress=progress, done_before=done_before, on_block=on_block,
                dtype=dtype,
            )  # fmt: skip
        failed = _count_failed(output, blocks)
        manifest.update(
            complete=True,
            explained=len(rows) - failed,
            failed=failed,
            shards=[shard_name(b) for b in range(len(blocks))],
        )
        write_atomic(output / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    finally:
        Path(lock.lock_file).unlink(missing_ok=True)
        lock.release()
    return JobSummary(len(rows), done_before, len(rows) - failed, failed, output)


def _count_failed(output: Path, blocks: Sequence[tuple[int, int]]) -> int:
    import pyarrow.parquet as pq

    missing = [b for b in range(len(blocks)) if b not in finished_blocks(output, blocks)]
    if missing:  # pragma: no cover - the run loop only returns when every block is written
        raise TextlensError(f"{len(missing)} block(s) were not written; run the job again")
    failed = 0
    for b in range(len(blocks)):
        ok = pq.read_table(output / shard_name(b), columns=["ok"]).column("ok").to_pylist()
        failed += sum(1 for v in ok if not v)
    return failed


def _execute(
    rows: Sequence[InputRow],
    output: Path,
    blocks: Sequence[tuple[int, int]],
    done: set[int],
    *,
    model: Any,
    request: Any,
    batch_size: int,
    ray: Any,
    progress: bool,
    done_before: int,
    on_block: Callable[[int], None] | None,
    dtype: str | None = None,
) -> None:
    import ray as ray_module
    from tqdm.auto import tqdm

    from textlens.corpus import remembered

    _ensure_ray(ray.address)
    bar = tqdm(
        total=len(rows),
        initial=done_before,
        unit="text",
        desc="explaining (ray)",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        n_workers, cpus, gpus = _pool(ray.workers, ray.gpus_per_worker)
        environment = {k: os.environ[k] for k in PASSED_ENVIRONMENT if k in os.environ}
        fields = json.loads(json.dumps(request.to_dict(), default=str))
        constructor = dict(
            output=str(output.resolve()),
            model=model,
            request=fields,
            batch_size=batch_size,
            threads=max(1, int(cpus)),
            environment=environment,
            corpora=remembered(request.settings.values()),
            device="cuda" if gpus else "cpu",
            dtype=dtype,
        )
        written, failures = done_before, 0
        while len(done) < len(blocks):
            todo = [b for b in range(len(blocks)) if b not in done]
            items = [
                {
                    "block": b,
                    "rows": json.dumps(
                        [
                            [r.row, r.id, r.text, r.error, r.documents]
                            for r in rows[slice(*blocks[b])]
                        ]
                    ),
                }
                for b in todo
            ]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # Ray's own API notes
                source = ray_module.data.from_items(items, override_num_blocks=len(items))
                dataset = source.map_batches(
                    BlockExplainer,
                    batch_size=1,
                    compute=ray_module.data.ActorPoolStrategy(size=min(n_workers, len(items))),
                    num_cpus=cpus,
                    num_gpus=gpus or None,
                    fn_constructor_kwargs=constructor,
                )  # Ray Data restarts a lost worker and retries its block; the loop is a backstop
            try:
                for result in dataset.iter_rows():
                    done.add(int(result["block"]))
                    written += int(result["rows"])
                    bar.update(int(result["rows"]))
                    if on_block is not None:
                        on_block(written)
            except (KeyboardInterrupt, TextlensError):
                raise
            except Exception as error:  # Ray gave up on a worker or a task: run what is left
                before = len(done)
                done = finished_blocks(output, blocks)
                written = sum(blocks[b][1] - blocks[b][0] for b in done)
                bar.n = written
                bar.refresh()
                failures = 0 if len(done) > before else failures + 1
                if failures == ATTEMPTS:
                    first = str(error).strip().splitlines()
                    raise TextlensError(
                        f"the Ray job failed {ATTEMPTS} times in a row without finishing a "
                        f"block ({first[0] if first else type(error).__name__}): the finished "
                        "blocks are saved; run the same command again to carry on"
                    ) from error
                warnings.warn(
                    f"a Ray worker was lost ({type(error).__name__}); running the "
                    f"{len(blocks) - len(done)} unfinished block(s) on new workers",
                    stacklevel=2,
                )
    finally:
        bar.close()


# Ray Data cannot run again in a process whose Ray was shut down and started anew (its cached
# actors and objects belong to the old session), so the Ray a job starts stays up for the next
# job in the same process and goes when the process ends (or at ``stop()``).
_SESSION: dict[str, Any] = {}


def _ensure_ray(address: str | None) -> None:
    """Start or join Ray for this process once; later jobs reuse it."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        if "address" in _SESSION and _SESSION["address"] != address:
            where = _SESSION["address"] or "this machine"
            raise TextlensError(
                f"this Python process already runs its jobs on Ray at {where}: run the job "
                f"for {address or 'this machine'} in a new process"
            )
        return
    if _SESSION.get("stopped"):
        raise TextlensError(
            "Ray was stopped in this Python process and cannot start again here: run the job "
            "in a new process"
        )
    _start_ray(address)
    _SESSION["address"] = address


def stop() -> None:
    """Shut down the Ray this process started or joined (the process cannot start it again)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
        _SESSION.clear()
        _SESSION["stopped"] = True


def _start_ray(address: str | None) -> None:
    """Join the cluster at ``address``; with none, start Ray on this machine."""
    import ray

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # Ray's notes go to its log files
    quiet: dict[str, Any] = dict(
        log_to_driver=False, logging_level=logging.ERROR, configure_logging=True
    )
    try:
        if address is None:
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except ConnectionError as error:
        raise TextlensError(
            f"cannot reach the Ray cluster at {address} ({str(error).splitlines()[0]}): check "
            "the address, or leave out --address to run on this machine"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Ray's notes on its own settings
        import ray.data

        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for handler in logging.getLogger("ray.data").handlers:  # its notes still go to its log files
        if not hasattr(handler, "_get_log_directory"):
            handler.setLevel(logging.ERROR)


def _pool(workers: int | None, gpus_per_worker: float) -> tuple[int, float, float]:
    """How many workers, and the CPUs and GPUs each asks for.

    With GPUs, one worker per ``gpus_per_worker`` GPUs of the cluster (one CPU each); on CPUs,
    the cluster's CPUs shared out, two to a worker unless ``workers`` says how many.
    """
    import ray

    total = ray.cluster_resources()
    cpus_total = int(total.get("CPU", 1))
    node_cpus = max(
        (int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1
    )
    if gpus_per_worker > 0:
        gpus_total = float(total.get("GPU", 0))
        if gpus_total < gpus_per_worker:
            raise TextlensError(
                f"the Ray cluster has {gpus_total:g} GPU(s), fewer than --gpus-per-worker "
                f"{gpus_per_worker:g}: ask for fewer, or leave it out to run on CPUs"
            )
        n = workers or max(1, math.floor(gpus_total / gpus_per_worker))
        return n, 1.0, gpus_per_worker
    n = workers or max(1, cpus_total // 2)
    cpus = max(1, min(node_cpus, cpus_total // n))
    return n, float(cpus), 0.0

"""A corpus through explain-file: the local engine against Ray Data with 1 and 2 workers.

Rotten Tomatoes test sentences, the demo classifier, methods ``gradient`` (``--n`` rows) and
``integrated-gradients`` (``--ig-n`` rows, its default 50 steps), batches of 16; each
configuration runs the whole ``textlens.jobs.explain_file`` call, in a Python process of its
own (Ray starts once per process), into a fresh output, so the wall time includes loading the
model and, for Ray, starting Ray and its workers. Ray's start-up overhead is measured apart: the
same job on 16 rows, Ray's wall time minus the local engine's.
Rows per second are given with and without that overhead. All measured side by side in one run.

    python benchmarks/corpus.py [--n 2000] [--ig-n 400] [--gpus-per-worker 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import write_result


def _job(data: Path, folder: Path, method: str, engine: str, workers: int | None, gpus: float):
    """One whole job in a fresh Python process (Ray starts once per process), timed inside it."""
    out = folder / (f"{method}-{engine}-{workers}" + (".parquet" if engine == "local" else ""))
    job = dict(data=str(data), out=str(out), method=method, engine=engine)
    job["options"] = {} if engine == "local" else {"workers": workers, "gpus_per_worker": gpus}
    child = subprocess.run(
        [sys.executable, __file__, "--job", json.dumps(job)],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"the {engine} job failed:\n{child.stderr[-2000:]}")
    return float(child.stdout.strip().splitlines()[-1])


def _run_job(job: dict) -> None:
    from textlens.jobs import RayOptions, explain_file

    warnings.simplefilter("ignore")
    began = time.perf_counter()
    ray = RayOptions(**job["options"]) if job["options"] else None
    summary = explain_file(
        Path(job["data"]), Path(job["out"]), method=job["method"], engine=job["engine"],
        progress=False, ray=ray,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    assert summary.explained == summary.total, "every row is explained"
    print(seconds)


def main() -> None:
    from textlens.data import rotten_tomatoes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="rows for gradient")
    parser.add_argument("--ig-n", type=int, default=400, help="rows for integrated-gradients")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--job", help=argparse.SUPPRESS)  # one configuration, in a child process
    args = parser.parse_args()
    if args.job:
        return _run_job(json.loads(args.job))
    warnings.simplefilter("ignore")
    texts = rotten_tomatoes("test").texts
    engines = [("local", None), ("ray", 1), ("ray", 2)]
    metrics: dict = {"rows": {}, "seconds": {}, "rows_per_second": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def data(n: int) -> Path:
            path = folder / f"in-{n}.jsonl"
            lines = [json.dumps({"text": t}) for t in texts[:n]]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return path

        (folder / "small").mkdir()
        small = {}
        for engine in engines:
            small[engine] = _job(
                data(16), folder / "small", "gradient", *engine, args.gpus_per_worker
            )
        overhead = {f"ray-{w}": small[("ray", w)] - small[("local", None)] for w in (1, 2)}
        metrics["ray_startup_overhead_seconds"] = overhead
        print("ray start-up overhead (16 rows, ray - local):", end="")
        print("  ".join(f"{k} {v:.1f} s" for k, v in overhead.items()), flush=True)
        for method, n in (("gradient", args.n), ("integrated-gradients", args.ig_n)):
            path = data(n)
            metrics["rows"][method] = n
            for engine, workers in engines:
                name = engine if workers is None else f"{engine}-{workers}"
                seconds = _job(path, folder, method, engine, workers, args.gpus_per_worker)
                net = seconds - overhead.get(name, 0.0)
                metrics["seconds"][f"{method} {name}"] = seconds
                metrics["rows_per_second"][f"{method} {name}"] = {
                    "with_startup": n / seconds,
                    "without_startup": n / net,
                }
                print(
                    f"{method:>22} {name:>6}: {n} rows in {seconds:7.1f} s = "
                    f"{n / seconds:6.2f} rows/s ({n / net:6.2f} without Ray's start-up)",
                    flush=True,
                )
            base = metrics["rows_per_second"][f"{method} local"]["with_startup"]
            for w in (1, 2):
                ratio = metrics["rows_per_second"][f"{method} ray-{w}"]["with_startup"] / base
                metrics.setdefault("ray_over_local", {})[f"{method} ray-{w}"] = ratio
                print(f"{'':>22} ray-{w} / local throughput: {ratio:.3f}", flush=True)
    write_result("corpus", metrics, device="cuda" if args.gpus_per_worker else "cpu")


if __name__ == "__main__":
    main()

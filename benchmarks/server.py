"""Load on the local server: 50 concurrent POST /api/explain for a 20-token sentence.

Starts `textlens serve` (the demo classifier) on a free loopback port, once for each worker
thread count (`--threads`), sends 50 requests at once for `gradient` and for
`integrated-gradients`, and reports requests per second, the median, 95th percentile and largest
latency, and the status codes (no 5xx expected).

    python benchmarks/server.py [--n 50] [--threads 1,2] [--busy 2]

With ``--busy N``, N processes that keep a core busy run during the measurement (a machine
that is also doing other work), and only `gradient` is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from _common import write_result

SENTENCE = (
    "A gripping, beautifully acted film that never once lets go of its audience until the end."
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def burst(url: str, method: str, n: int) -> dict:
    payload = {"text": SENTENCE, "method": method, "heatmap": False}

    async def one(client: httpx.AsyncClient) -> tuple[int, float]:
        began = time.perf_counter()
        response = await client.post("/api/explain", json=payload)
        return response.status_code, time.perf_counter() - began

    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await client.post("/api/explain", json=payload)  # warm-up
        began = time.perf_counter()
        results = await asyncio.gather(*[one(client) for _ in range(n)])
        wall = time.perf_counter() - began
    codes = [c for c, _ in results]
    latencies = [t for _, t in results]
    return {
        "requests": n,
        "wall_s": round(wall, 3),
        "requests_per_s": round(n / wall, 2),
        "median_latency_s": round(statistics.median(latencies), 3),
        "p95_latency_s": round(sorted(latencies)[max(0, int(0.95 * len(latencies)) - 1)], 3),
        "max_latency_s": round(max(latencies), 3),
        "status_codes": {str(c): codes.count(c) for c in sorted(set(codes))},
        "any_5xx": any(c >= 500 for c in codes),
    }


def serve_and_measure(exe: str, threads: int, n: int, methods: tuple[str, ...]) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [exe, "serve", "--port", str(port), "--threads", str(threads)], stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/api/model", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        tokens = httpx.post(
            url + "/api/explain", json={"text": SENTENCE, "method": "gradient"}, timeout=60
        ).json()["explanation"]["tokens"]
        out: dict = {"tokens": len(tokens)}
        for method in methods:
            out[method] = m = asyncio.run(burst(url, method, n))
            print(
                f"threads {threads}  {method:22s} {m['requests_per_s']:7.2f} req/s  "
                f"p50 {m['median_latency_s']} s  p95 {m['p95_latency_s']} s  "
                f"max {m['max_latency_s']} s  codes {m['status_codes']}"
            )
        return out
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--threads", default="1,2", help="worker thread counts to measure")
    parser.add_argument("--busy", type=int, default=0, help="processes keeping cores busy")
    args = parser.parse_args()
    exe = shutil.which("textlens") or str(Path(sys.executable).parent / "textlens")
    methods = ("gradient",) if args.busy else ("gradient", "integrated-gradients")
    metrics: dict = {"sentence": SENTENCE, "concurrent": args.n, "busy_processes": args.busy}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        metrics["by_threads"] = {
            t: serve_and_measure(exe, int(t), args.n, methods) for t in args.threads.split(",")
        }
    finally:
        for hog in hogs:
            hog.kill()
    write_result("server-busy" if args.busy else "server", metrics)


if __name__ == "__main__":
    main()

"""Load on the local server: 50 concurrent POST /api/explain for a 20-token sentence.

Starts `textlens serve` (the demo classifier) on a free loopback port, sends 50 requests at once
for `gradient` and for `integrated-gradients`, and reports requests per second, the median and
largest latency, and the status codes (no 5xx expected).

    python benchmarks/server.py [--n 50]
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
        "max_latency_s": round(max(latencies), 3),
        "status_codes": {str(c): codes.count(c) for c in sorted(set(codes))},
        "any_5xx": any(c >= 500 for c in codes),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    exe = shutil.which("textlens") or str(Path(sys.executable).parent / "textlens")
    port = free_port()
    server = subprocess.Popen([exe, "serve", "--port", str(port)], stdout=subprocess.DEVNULL)
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
        metrics = {"sentence": SENTENCE, "tokens": len(tokens), "concurrent": args.n}
        for method in ("gradient", "integrated-gradients"):
            metrics[method] = asyncio.run(burst(url, method, args.n))
            m = metrics[method]
            print(
                f"{method:22s} {m['requests_per_s']:7.2f} req/s  median {m['median_latency_s']} s"
                f"  max {m['max_latency_s']} s  codes {m['status_codes']}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    write_result("server", metrics)


if __name__ == "__main__":
    main()

"""The information method's cost: the estimate it announces against the time it takes, and the
iterations each layer needs (what makes a (text, layer) slow).

On the demo classifier, in one run:

- iterations per (sentence, layer) over the first ``--n`` test sentences (median and largest per
  layer, how many reached ``max_steps``), and for the slowest pairs the number of tokens at the
  largest sigma (saturated) and the median gap between neighbouring log sigmas (near-ties);
- the announced estimate (``textlens.progress``) against the measured seconds for 1 and for 16
  sentences.

    python benchmarks/information_cost.py [--n 48]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import write_result


def main() -> None:
    import numpy as np

    from textlens import progress
    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.pipeline import explain_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    adapter = load_model(None)
    texts = list(rotten_tomatoes("test").texts[: args.n])
    explain_many(texts[:1], adapter, "information-loss", max_steps=2)  # warm, regularisation

    estimates = {}
    for n in (1, 16):
        heard: list[float] = []
        began = time.perf_counter()
        with progress.reporting(lambda m, s, heard=heard: heard.extend([s] if s else [])):
            explain_many(texts[:n], adapter, "information-loss")
        took = time.perf_counter() - began
        estimates[f"{n} sentence(s)"] = {"estimate_s": sum(heard), "measured_s": took}
        print(f"{n:>2} sentence(s): estimate {sum(heard):6.1f} s, measured {took:6.1f} s")

    exps = explain_many(texts, adapter, "information-loss")
    steps = np.stack([e.extras["steps"] for e in exps])
    layers = list(exps[0].layers)
    print("layer  median  largest")
    for j, layer in enumerate(layers):
        print(f"{layer:>5}  {np.median(steps[:, j]):6.1f}  {int(steps[:, j].max()):7d}")
    slow = []
    for i, e in enumerate(exps):
        for j in range(len(layers)):
            if steps[i, j] >= 3 * np.median(steps[:, j]):
                log_sigma = np.log(e.extras["sigma"][j])[~np.asarray(e.special)]
                gaps = np.diff(np.sort(log_sigma))
                slow.append({
                    "sentence": i, "layer": layers[j], "iterations": int(steps[i, j]),
                    "at_largest_sigma": int(e.extras["saturated"][j][~np.asarray(e.special)].sum()),
                    "median_gap": float(np.median(gaps)),
                })  # fmt: skip
    gaps = [
        float(np.median(np.diff(np.sort(np.log(e.extras["sigma"][j])[~np.asarray(e.special)]))))
        for e in exps
        for j in range(len(layers))
    ]
    for row in slow:
        print("slow:", row)
    print(f"median gap over all pairs: {np.median(gaps):.4f}")
    write_result(
        "information_cost",
        {
            "estimates": estimates,
            "iterations": {
                str(layer): {
                    "median": float(np.median(steps[:, j])),
                    "largest": int(steps[:, j].max()),
                }
                for j, layer in enumerate(layers)
            },
            "reached_max_steps": int((steps >= 300).sum()),
            "pairs": int(steps.size),
            "slow_pairs": slow,
            "median_gap_all_pairs": float(np.median(gaps)),
        },
    )


if __name__ == "__main__":
    main()

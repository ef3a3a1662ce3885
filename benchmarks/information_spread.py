"""The regularisation's spread: every token's vector pooled (textlens) against the spread of
sentence means (the reference's, ``spread="sentence-means"``, used by ``compat``).

On the demo classifier's hidden states (packaged corpus, 500 sentences), for each layer: the
median ratio of the two spreads over units, and over the first ``--n`` test sentences the
median Spearman correlation of the two answers' sigma and the median shift of log sigma.

    python benchmarks/information_spread.py [--n 16]
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
    from scipy.stats import spearmanr

    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.methods.information.regularization import regularization
    from textlens.pipeline import explain_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    adapter = load_model(None)
    texts = list(rotten_tomatoes("test").texts[: args.n])
    spreads = ("tokens", "sentence-means")
    r = {s: regularization(adapter, "hidden", 500, "demo", s) for s in spreads}
    runs, seconds = {}, {}
    for spread in spreads:
        began = time.perf_counter()
        runs[spread] = explain_many(texts, adapter, "information-loss", spread=spread)
        seconds[spread] = time.perf_counter() - began
    rows = {}
    print("layer  r(means)/r(tokens)  Spearman of sigma  shift of log sigma")
    for j, layer in enumerate(runs["tokens"][0].layers):
        rho, shift = [], []
        for a, b in zip(runs["tokens"], runs["sentence-means"], strict=True):
            words = ~np.asarray(a.special)
            la, lb = np.log(a.extras["sigma"][j][words]), np.log(b.extras["sigma"][j][words])
            rho.append(spearmanr(la, lb)[0])
            shift.append(float(np.mean(lb - la)))
        ratio = float((r["sentence-means"][layer] / r["tokens"][layer]).median())
        rows[str(layer)] = {
            "spread_ratio": ratio,
            "spearman": float(np.median(rho)),
            "log_sigma_shift": float(np.median(shift)),
        }
        print(f"{layer:>5}  {ratio:18.3f}  {np.median(rho):17.3f}  {np.median(shift):+18.3f}")
    write_result("information_spread", {"layers": rows, "seconds": seconds, "n": args.n})


if __name__ == "__main__":
    main()

"""The information method at the classifier's head: which Phi ranks words faithfully?

On the first ``--n`` test sentences of the demo classifier, in one run, as ``textlens evaluate``
runs the method (``max_steps=100``, 4 noise samples a step): Phi = all of the logits
(``phi="logits"``) against Phi = the explained class's log-odds, log p / (1 - p) scaled by its
spread over the corpus (``phi="log-odds"``), with integrated gradients (50 steps) as the
yardstick. For each: the removal metrics with 95% bootstrap intervals over sentences (token
deletion, the predicted class), the share of saturated tokens and seconds per sentence.
``--defaults``: integrated gradients against the method on the logits with its default
settings (16 noise samples a step on the head's output, run to convergence), written to
``results/information_head_defaults.json``.

    python benchmarks/information_head.py [--n 200] [--defaults]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import write_result

RUNS = {
    "integrated-gradients": ("integrated-gradients", {}),
    "information-loss, phi=log-odds": (
        "information-loss",
        {"phi": "log-odds", "max_steps": 100, "n_samples": 4},
    ),
    "information-loss, phi=logits": (
        "information-loss",
        {"phi": "logits", "max_steps": 100, "n_samples": 4},
    ),
}
DEFAULTS = {
    "integrated-gradients": ("integrated-gradients", {}),
    "information-loss, phi=logits, defaults": ("information-loss", {"phi": "logits"}),
}
METRICS = ("comprehensiveness", "sufficiency", "deletion_auc", "loo_kendall_tau")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--defaults", action="store_true", help="the method's default settings")
    args = parser.parse_args()

    import numpy as np

    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.evaluate.comparison import bootstrap_interval
    from textlens.evaluate.faithfulness import evaluate
    from textlens.pipeline import explain_many

    adapter = load_model(None)
    texts = list(rotten_tomatoes("test").texts[: args.n])
    results = {}
    for name, (method, settings) in (DEFAULTS if args.defaults else RUNS).items():
        began = time.perf_counter()
        exps = explain_many(texts, adapter, method, **settings)
        seconds = (time.perf_counter() - began) / len(texts)
        faith = evaluate(exps, adapter)
        row: dict[str, object] = {"seconds_per_sentence": round(seconds, 3)}
        for metric in METRICS:
            mean, low, high = bootstrap_interval([getattr(f, metric) for f in faith])
            row[metric] = {"mean": mean, "low": low, "high": high}
        if method == "information-loss":
            saturated = np.concatenate([np.asarray(e.extras["saturated"]).ravel() for e in exps])
            row["saturated_share"] = float(saturated.mean())
        results[name] = row
        shown = ", ".join(
            f"{m} {row[m]['mean']:.3f} [{row[m]['low']:.3f}, {row[m]['high']:.3f}]" for m in METRICS
        )
        print(f"{name}: {shown}, {seconds:.2f} s per sentence", flush=True)
    name = "information_head_defaults" if args.defaults else "information_head"
    write_result(name, {"n": len(texts), "methods": results})


if __name__ == "__main__":
    main()

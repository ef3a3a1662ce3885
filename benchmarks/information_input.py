"""Where the information method's noise goes, compared on faithfulness: the word embeddings
(textlens's default) against the embedding module's output (the paper's and the reference's
input of Phi, ``noise_at="embedding-output"``).

On the first ``--n`` test sentences of the demo classifier, for Phi = the logits (with the
settings of ``textlens evaluate``: fixed-point, ``max_steps=100``, 4 noise samples a step) and
Phi = the last layer's first-token vector (what the classifier's head reads): mean
comprehensiveness, sufficiency and Kendall tau with leave-one-out (token deletion), each with a
95% percentile bootstrap interval over sentences (1,000 resamples, seeded), and seconds per
sentence; measured in one run.

    python benchmarks/information_input.py [--n 50]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import write_result

POINTS = ("word-embeddings", "embedding-output")
PHIS = {"logits": {"phi": "logits"}, "cls@6": {"phi": "cls", "layers": (6,)}}
METRICS = ("comprehensiveness", "sufficiency", "loo_kendall_tau")


def _interval(values, rng):
    import numpy as np

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    means = [rng.choice(values, len(values)).mean() for _ in range(1000)]
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    import numpy as np

    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.evaluate.faithfulness import evaluate
    from textlens.pipeline import explain_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    adapter = load_model(None)
    texts = list(rotten_tomatoes("test").texts[: args.n])
    results = {}
    for (name, phi), point in itertools.product(PHIS.items(), POINTS):
        began = time.perf_counter()
        exps = explain_many(
            texts, adapter, "information-loss", max_steps=100, n_samples=4, noise_at=point, **phi
        )
        saturated = float(np.mean([np.mean(e.saturated[-1][~np.asarray(e.special)]) for e in exps]))
        seconds = (time.perf_counter() - began) / len(texts)
        faith = evaluate(exps, adapter)
        rng = np.random.default_rng(0)
        row = {"seconds_per_sentence": seconds, "share_at_bound": saturated}
        for m in METRICS:
            mean, low, high = _interval([getattr(r, m) for r in faith], rng)
            row[m] = {"mean": mean, "low": low, "high": high}
        results[f"{name} {point}"] = row
        shown = "  ".join(
            f"{m} {row[m]['mean']:.3f} [{row[m]['low']:.3f}, {row[m]['high']:.3f}]" for m in METRICS
        )
        print(
            f"{name:>6} {point:>16}: {seconds:.2f} s/sentence  at bound {saturated:.2f}  {shown}",
            flush=True,
        )
    write_result("information_input", {"n": len(texts), "points": results})


if __name__ == "__main__":
    main()

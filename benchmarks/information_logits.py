"""Information loss on the demo classifier's logits: solvers compared on speed and faithfulness.

Phi = the logits (two units) is what the method comparison of ``textlens evaluate`` explains.
With so few output units the noise estimates are noisy, and the data term saturates once the
noise drowns the words, so this measures, on the first ``--n`` test sentences in one run:

- each setting's seconds per sentence, iterations and final loss (median over sentences);
- the faithfulness of its ranking (comprehensiveness, sufficiency, deletion AUC, Kendall tau
  against leave-one-out; token deletion, as in ``textlens evaluate``);
- with ``--reference``, a long Adam optimum (16 samples per step, 400 steps, about a minute per
  sentence here) and each setting's Spearman correlation with it.

    python benchmarks/information_logits.py [--n 16] [--reference]
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

SETTINGS = {
    "fixed-point, max_steps 300": {"n_samples": 4},
    "fixed-point, max_steps 100 (textlens evaluate)": {"max_steps": 100, "n_samples": 4},
    "adam, n_samples 2, max_steps 100": {"solver": "adam", "n_samples": 2, "max_steps": 100},
}
REFERENCE = {"solver": "adam", "n_samples": 16, "max_steps": 400, "tol": 1e-9}
METRICS = ("comprehensiveness", "sufficiency", "deletion_auc", "loo_kendall_tau")


def _each(exps, key: str):
    import numpy as np

    return np.concatenate([np.asarray(e.extras[key], float).ravel() for e in exps])


def main() -> None:
    import numpy as np
    from scipy.stats import spearmanr

    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.evaluate.faithfulness import evaluate
    from textlens.pipeline import explain_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()

    adapter = load_model(None)
    texts = list(rotten_tomatoes("test").texts[: args.n])
    runs = dict(SETTINGS)
    if args.reference:
        runs["reference: adam, n_samples 16, 400 steps"] = REFERENCE
    scores: dict[str, list[np.ndarray]] = {}
    metrics: dict[str, dict[str, float]] = {}
    for name, settings in runs.items():
        began = time.perf_counter()
        exps = explain_many(texts, adapter, "information-loss", phi="logits", **settings)
        seconds = (time.perf_counter() - began) / len(texts)
        scores[name] = [np.asarray(e.scores, float).ravel() for e in exps]
        faith = evaluate(exps, adapter)
        metrics[name] = {
            "seconds_per_sentence": seconds,
            "median_iterations": float(np.median(_each(exps, "steps"))),
            "median_loss": float(np.median(_each(exps, "loss"))),
            **{m: float(np.nanmean([getattr(r, m) for r in faith])) for m in METRICS},
        }
        print(name, {k: round(v, 3) for k, v in metrics[name].items()}, flush=True)
    if args.reference:
        ref = scores["reference: adam, n_samples 16, 400 steps"]
        for name in SETTINGS:
            rho = [spearmanr(a, b)[0] for a, b in zip(ref, scores[name], strict=True)]
            metrics[name]["spearman_with_reference_median"] = float(np.nanmedian(rho))
            metrics[name]["spearman_with_reference_min"] = float(np.nanmin(rho))
            print(name, "Spearman with the reference: median", round(np.nanmedian(rho), 3))
    write_result("information_logits", {"n": len(texts), "settings": metrics})


if __name__ == "__main__":
    main()

"""The information method's bound on sigma (``max_sigma``): is the loss well-posed on the logits?

On the first ``--n`` test sentences of the demo classifier, Phi = the logits: the fixed-point
solver with its defaults (16 noise samples a step on the logits, at most 300 iterations) against
a long Adam solve (4 samples, ``max_steps=1500``, ``tol=0.01``), both with the bound; also the
fixed-point solver with 4 samples and ``max_steps=100`` (as ``textlens evaluate`` runs it, and
the default before 16 samples); per sentence the Spearman correlation of
their sigma over the real tokens (ties at the bound count as ties), the share of tokens each
leaves saturated, and the largest relative difference of sigma between batches of ``--n`` and
one text at a time (the answer must not depend on the grouping). Also, on hidden states (all 6
layers), the share of saturated tokens per layer. Every figure is measured in one run.

    python benchmarks/information_bounds.py [--n 16] [--max-sigma 10]
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


def _real(exp):
    import numpy as np

    return ~np.asarray(exp.special, bool)


def main() -> None:
    import numpy as np
    from scipy.stats import spearmanr

    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.pipeline import explain_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--max-sigma", type=float, default=10.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    adapter = load_model(None)
    texts = list(rotten_tomatoes("test").texts[: args.n])
    bound = {"max_sigma": args.max_sigma}
    common = {"phi": "logits", **bound}
    began = time.perf_counter()
    fixed = explain_many(texts, adapter, "information-loss", **common)
    fixed_s = (time.perf_counter() - began) / len(texts)
    adam = explain_many(
        texts, adapter, "information-loss", solver="adam", max_steps=1500, tol=0.01,
        n_samples=4, **common,
    )  # fmt: skip
    began = time.perf_counter()
    cheap = explain_many(texts, adapter, "information-loss", max_steps=100, n_samples=4, **common)
    cheap_s = (time.perf_counter() - began) / len(texts)
    single = [explain_many([t], adapter, "information-loss", **common)[0] for t in texts]
    cap = 300  # the default max_steps
    rho, rho_free, jaccard, sat_fixed, sat_adam, grouping, settled = [], [], [], [], [], [], []
    loss_gap, rho_cheap = [], []
    for f, a, s, c in zip(fixed, adam, single, cheap, strict=True):
        real = _real(f)
        sf, sa = f.extras["sigma"][-1][real], a.extras["sigma"][-1][real]
        rho.append(float(spearmanr(np.log(sf), np.log(sa)).statistic))
        sc = c.extras["sigma"][-1][real]
        rho_cheap.append(float(spearmanr(np.log(sc), np.log(sa)).statistic))
        bf, ba = f.saturated[-1][real], a.saturated[-1][real]
        free = ~bf & ~ba
        if free.sum() >= 3:
            rho_free.append(float(spearmanr(np.log(sf[free]), np.log(sa[free])).statistic))
        jaccard.append(float((bf & ba).sum() / max(1, (bf | ba).sum())))
        sat_fixed.append(float(bf.mean()))
        sat_adam.append(float(ba.mean()))
        # the loss of each answer, by one common estimator (its own noise stream)
        loss_f, loss_a = float(f.extras["loss"][-1]), float(a.extras["loss"][-1])
        loss_gap.append((loss_f - loss_a) / abs(loss_a))
        ss = s.extras["sigma"][-1][real]
        grouping.append(float(np.max(np.abs(sf - ss) / ss)))
        settled.append(int(f.extras["steps"][-1]) < cap)
    hidden = explain_many(texts, adapter, "information-loss", **bound)
    layers = list(hidden[0].layers)
    per_layer = {
        str(layer): float(np.mean([e.saturated[j][_real(e)].mean() for e in hidden]))
        for j, layer in enumerate(layers)
    }
    metrics = {
        "n": len(texts),
        "max_sigma": args.max_sigma,
        "logits_spearman_fixed_vs_adam": {
            "median": float(np.median(rho)), "min": float(np.min(rho)), "values": rho,
        },
        "logits_spearman_fixed_4_samples_100_steps_vs_adam": {
            "median": float(np.median(rho_cheap)), "min": float(np.min(rho_cheap)),
            "values": rho_cheap,
        },
        "logits_spearman_over_tokens_neither_saturates": {
            "median": float(np.median(rho_free)), "min": float(np.min(rho_free)),
            "texts": len(rho_free),
        },
        "logits_saturated_jaccard_fixed_vs_adam": float(np.median(jaccard)),
        "logits_loss_fixed_minus_adam_relative": {
            "median": float(np.median(loss_gap)), "values": loss_gap,
            "fixed_lower": int(np.sum(np.asarray(loss_gap) < 0)),
        },
        "logits_fixed_point_settled_within_300": int(np.sum(settled)),
        "logits_fixed_point_iterations": [int(f.extras["steps"][-1]) for f in fixed],
        "logits_grouping_max_relative_difference_settled": float(
            np.max([g for g, ok in zip(grouping, settled, strict=True) if ok], initial=0.0)
        ),
        "logits_saturated_share": {
            "fixed-point": float(np.mean(sat_fixed)), "adam": float(np.mean(sat_adam)),
        },
        "logits_grouping_max_relative_difference": float(np.max(grouping)),
        "hidden_saturated_share_by_layer": per_layer,
        "logits_seconds_per_sentence": {
            "fixed-point default": round(fixed_s, 2),
            "fixed-point 4 samples, 100 steps": round(cheap_s, 2),
        },
    }  # fmt: skip
    print(f"logits, fixed-point vs adam: Spearman median {np.median(rho):.3f}, min {min(rho):.3f}")
    print(
        f"  with 4 samples and 100 steps: median {np.median(rho_cheap):.3f}, "
        f"min {min(rho_cheap):.3f}"
    )
    print(
        f"  over tokens neither solver saturates: median {np.median(rho_free):.3f}, "
        f"min {np.min(rho_free):.3f}; saturated sets' Jaccard median {np.median(jaccard):.3f}"
    )
    print(
        f"loss of fixed-point minus adam's, relative: median {np.median(loss_gap):+.4f}; "
        f"fixed-point lower on {int(np.sum(np.asarray(loss_gap) < 0))} of {len(texts)}"
    )
    print(f"fixed-point settled within {cap} iterations on {int(np.sum(settled))} of {len(texts)}")
    print(f"saturated share: fixed-point {np.mean(sat_fixed):.3f}, adam {np.mean(sat_adam):.3f}")
    print(f"batch of {len(texts)} vs one at a time: largest relative sigma difference "
          f"{np.max(grouping):.2e}")  # fmt: skip
    print(f"seconds per sentence: default {fixed_s:.2f}, 4 samples and 100 steps {cheap_s:.2f}")
    print("hidden states, saturated share by layer:", per_layer)
    write_result("information_bounds", metrics)


if __name__ == "__main__":
    main()

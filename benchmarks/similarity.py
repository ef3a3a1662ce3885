"""Is the similarity target meaningful? Deleting the words a method ranks highest should lower the
similarity of two texts faster than deleting random words.

On ``--n`` pairs built from the Rotten Tomatoes test sentences (half: a sentence against a copy
with a few words replaced by words of another sentence; half: a sentence against an unrelated
one), the packaged all-MiniLM-L6-v2 with mean pooling and cosine similarity: the first text of each
pair is explained against the second (held fixed), then its words are deleted in the order each
method ranks them (``textlens.evaluate`` with ``unit="word"``, following the similarity). Printed
and written: each method's mean deletion curve (similarity at 0, 10, ... 100% of the words
deleted) with 95% bootstrap intervals per point (1,000 resamples over pairs, seeded), the area
under it (lower = faster fall), and seconds per pair; all measured in one run.

    python benchmarks/similarity.py [--n 100]
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

METHODS = {
    "gradient": {},
    "gradient-x-input": {},
    "integrated-gradients": {"n_steps": 32},
    "occlusion": {},
    "random": None,
}
FIGURE = Path(__file__).resolve().parent.parent / "docs" / "evaluation" / "similarity-deletion.png"


def build_pairs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(kind, text, other): ``edited`` pairs (a few words replaced) and ``unrelated`` pairs."""
    import numpy as np

    from textlens.data import rotten_tomatoes

    rng = np.random.default_rng(seed)
    texts = [t for t in rotten_tomatoes("test").texts if 8 <= len(t.split()) <= 30]
    order = rng.permutation(len(texts))
    pairs = []
    for j in range(n):
        text = texts[order[j]]
        donor = texts[order[-1 - j]].split()
        if j % 2 == 0:
            words = text.split()
            for i in rng.choice(len(words), size=min(3, len(words) // 4), replace=False):
                words[i] = donor[int(rng.integers(len(donor)))]
            pairs.append(("edited", text, " ".join(words)))
        else:
            pairs.append(("unrelated", text, " ".join(donor)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    import numpy as np

    from textlens import explain_many, load_model
    from textlens.evaluate import evaluate
    from textlens.evaluate.comparison import bootstrap_interval
    from textlens.evaluate.faithfulness import CURVE_POINTS, evaluate_scores, removal_plans
    from textlens.targets import Similarity, SimilarityValue

    adapter = load_model("encoder")
    pairs = build_pairs(args.n)
    texts = [t for _, t, _ in pairs]
    vectors = np.stack([Similarity(o).vector(adapter).numpy() for _, _, o in pairs])
    follow = SimilarityValue(vectors)
    curves, seconds = {}, {}
    for name, settings in METHODS.items():
        began = time.perf_counter()
        if settings is None:
            rng = np.random.default_rng(0)
            _, plans = removal_plans(adapter, texts, "word")
            scores = [rng.random(len(p.units)) for p in plans]
            seconds[name] = (time.perf_counter() - began) / len(texts)
            results = evaluate_scores(adapter, texts, scores, unit="word", follow=follow)
        else:
            exps = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _, text, other in pairs:  # each pair has its own other side
                    exps += explain_many([text], adapter, name, Similarity(other), **settings)
            seconds[name] = (time.perf_counter() - began) / len(texts)
            results = evaluate(exps, adapter, unit="word", follow=follow)
        curves[name] = np.array([r.deletion_curve for r in results])
    kinds = np.array([k for k, _, _ in pairs])
    metrics: dict[str, dict] = {}
    edited, unrelated = int((kinds == "edited").sum()), int((kinds == "unrelated").sum())
    print(f"{len(pairs)} pairs ({edited} edited, {unrelated} unrelated): similarity as words go")
    head = "method".ljust(22) + "".join(f"{int(p * 100):>7}%" for p in CURVE_POINTS[::2])
    print(head + "   AUC [95% interval]    s/pair")
    for name, c in curves.items():
        points = [bootstrap_interval(c[:, i]) for i in range(c.shape[1])]
        x = np.asarray(CURVE_POINTS)
        aucs = ((c[:, 1:] + c[:, :-1]) / 2 * np.diff(x)).sum(1)
        auc = bootstrap_interval(aucs)
        by_kind = {k: float(aucs[kinds == k].mean()) for k in ("edited", "unrelated")}
        metrics[name] = {
            "curve": [{"mean": m, "low": lo, "high": hi} for m, lo, hi in points],
            "deletion_auc": {"mean": auc[0], "low": auc[1], "high": auc[2]},
            "deletion_auc_by_kind": by_kind,
            "seconds_per_pair": seconds[name],
        }
        cells = "".join(f"{m:8.3f}" for m, _, _ in points[::2])
        print(f"{name:<22}{cells}   {auc[0]:.3f} [{auc[1]:.3f}, {auc[2]:.3f}]   "
              f"{seconds[name]:.3f}")  # fmt: skip
    _plot(curves, metrics)
    write_result("similarity", {"pairs": len(pairs), "methods": metrics})


def _plot(curves, metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from textlens.evaluate.faithfulness import CURVE_POINTS

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = [100 * p for p in CURVE_POINTS]
    for name in curves:
        pts = metrics[name]["curve"]
        mean = [p["mean"] for p in pts]
        style = {"color": "0.4", "linestyle": "--"} if name == "random" else {}
        ax.plot(x, mean, label=name, **style)
        ax.fill_between(x, [p["low"] for p in pts], [p["high"] for p in pts], alpha=0.15, **(
            {"color": "0.4"} if name == "random" else {}))  # fmt: skip
    ax.set_xlabel("words deleted, highest-ranked first (%)")
    ax.set_ylabel("cosine similarity to the other text")
    ax.set_title("all-MiniLM-L6-v2, Rotten Tomatoes pairs (95% intervals)", fontsize=9)
    ax.legend(fontsize=8)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110, bbox_inches="tight")
    print(f"wrote {FIGURE.relative_to(FIGURE.parent.parent.parent)}")


if __name__ == "__main__":
    main()

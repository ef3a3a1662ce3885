"""Half precision against float32: each method's scores on bfloat16 and float16 weights.

For the demo classifier (Rotten Tomatoes test sentences) and SmolLM2-135M-Instruct (prompts,
next token), every method runs at its default settings on the float32 model and on the same
weights cast to bfloat16 and to float16, explaining the same target (the float32 model's
prediction). Per text: the Spearman correlation of the scores (every layer of a layered method)
with float32's, the largest difference relative to the text's largest float32 score, and whether
the most important token is the same. The methods compute in float32 whatever the model's dtype;
what differs is the model's own arithmetic.

    python benchmarks/precision.py                      # 8 sentences, 3 prompts (CPU: ~20 min)
    python benchmarks/precision.py --texts 4 --prompts 1 --methods gradient,occlusion

A CPU computes float16 slowly (no native float16 matrix products on most CPUs): the timings say
how much, and a GPU changes them (bfloat16 and float16 run there at full speed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

PROMPTS = [
    "The museum in the old harbour town keeps a bronze bell, three maps of the coast and a "
    "painted sledge. Visitors who ask about the bell are told that it came from",
    "Marta planted tomatoes, beans and a row of sunflowers behind the school, and every "
    "morning before lessons the children watered them. By August the tallest plant was the",
    "The committee met on Tuesday to choose a name for the new bridge over the river. After "
    "a long debate the members finally agreed to call it the",
    "When the power failed during the storm, the family lit candles, played cards at the "
    "kitchen table and listened to the rain on the roof until",
]
LM_METHODS = (
    "gradient", "gradient-x-input", "smoothgrad", "integrated-gradients", "occlusion",
    "attention", "relevance", "layer-relevance",
)  # fmt: skip
"""The methods measured on SmolLM2 (the sampling and layer methods take minutes a prompt in
float16 on a CPU)."""


def rank(values):
    import numpy as np

    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


def compare(reference, other) -> dict[str, float]:
    """Spearman, largest relative difference and top-1 agreement of two explanations' scores
    (non-special tokens; every layer of a layered one)."""
    import numpy as np

    keep = ~np.asarray(reference.special, dtype=bool)
    a = np.asarray(reference.scores, dtype=float)[..., keep].ravel()
    b = np.asarray(other.scores, dtype=float)[..., keep].ravel()
    scale = float(np.abs(a).max()) or 1.0
    spearman = float(np.corrcoef(rank(a), rank(b))[0, 1]) if a.size > 1 else 1.0
    top_a = np.asarray(reference.row(), dtype=float)[keep]
    top_b = np.asarray(other.row(), dtype=float)[keep]
    pick = (lambda v: np.argmax(np.abs(v))) if reference.signed else np.argmax
    return {
        "spearman": spearman,
        "largest_difference": float(np.abs(a - b).max()) / scale,
        "same_top": float(pick(top_a) == pick(top_b)),
    }


def _delta(cells: dict, exp) -> None:
    """Keep an integrated-gradients run's convergence delta (its own error, in the target's
    units), so that a disagreement can be told from the method not converging."""
    if "convergence_delta" in exp.extras:
        cells.setdefault("delta", []).append(abs(float(exp.extras["convergence_delta"])))


def measure(adapters, texts, methods, target_of) -> dict:
    """Per method: for each half dtype, the median and smallest Spearman, the largest relative
    difference, the top-1 agreement and the median seconds a text (float32's too)."""
    import numpy as np

    from textlens import explain

    out = {}
    for method in methods:
        rows: dict[str, dict[str, list[float]]] = {name: {} for name in adapters}
        for text in texts:
            began = time.perf_counter()
            reference = explain(text, adapters["float32"], method)
            rows["float32"].setdefault("seconds", []).append(time.perf_counter() - began)
            _delta(rows["float32"], reference)
            target = target_of(reference)
            for name, adapter in adapters.items():
                if name == "float32":
                    continue
                began = time.perf_counter()
                half = explain(text, adapter, method, target=target)
                seconds = time.perf_counter() - began
                cells = rows[name]
                cells.setdefault("seconds", []).append(seconds)
                _delta(cells, half)
                for key, value in compare(reference, half).items():
                    cells.setdefault(key, []).append(value)
        out[method] = {
            name: {
                "seconds_median": float(np.median(cells["seconds"])),
                **(
                    {"convergence_delta_median": float(np.median(cells["delta"]))}
                    if cells.get("delta")
                    else {}
                ),
                **(
                    {
                        "spearman_median": float(np.median(cells["spearman"])),
                        "spearman_min": float(np.min(cells["spearman"])),
                        "largest_difference": float(np.max(cells["largest_difference"])),
                        "same_top": float(np.mean(cells["same_top"])),
                    }
                    if name != "float32"
                    else {}
                ),
            }
            for name, cells in rows.items()
        }
        line = "  ".join(
            f"{n}: rho {c['spearman_median']:.3f} (min {c['spearman_min']:.3f}) "
            f"diff {c['largest_difference']:.3f} top {c['same_top']:.2f} "
            f"{c['seconds_median']:.2f}s"
            for n, c in out[method].items()
            if n != "float32"
        )
        print(f"{method:31s} fp32 {out[method]['float32']['seconds_median']:.2f}s  {line}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=8, help="Rotten Tomatoes test sentences")
    parser.add_argument("--prompts", type=int, default=3, help="SmolLM2 prompts (0: none)")
    parser.add_argument("--methods", default="all", help="comma-separated, or all")
    parser.add_argument("--dtypes", default="bfloat16,float16")
    args = parser.parse_args()

    import torch

    from textlens import METHODS, load_model
    from textlens.data import rotten_tomatoes

    torch.manual_seed(0)
    dtypes = ["float32", *args.dtypes.split(",")]
    every = sorted(METHODS)
    chosen = every if args.methods == "all" else args.methods.split(",")
    metrics: dict = {"dtypes": dtypes, "texts": args.texts, "prompts": args.prompts}

    print(f"demo classifier, {args.texts} test sentences")
    classifier = {d: load_model(None, dtype=d) for d in dtypes}
    texts = list(rotten_tomatoes("test").texts[: args.texts])
    metrics["classifier"] = measure(classifier, texts, chosen, lambda e: e.target.index)
    del classifier

    if args.prompts:
        print(f"SmolLM2-135M-Instruct, {args.prompts} prompts, next token")
        lm = {d: load_model("demo-lm", dtype=d) for d in dtypes}
        methods = [m for m in chosen if m in LM_METHODS]
        metrics["lm"] = measure(lm, PROMPTS[: args.prompts], methods, lambda e: e.target.index)
    write_result("precision", metrics)


if __name__ == "__main__":
    main()

"""Method comparison on the test split: every method scored on the same sentences.

Every method explains the same ``n`` test sentences (sub-word level, the predicted class); each
explanation is scored with ``evaluate``; each metric is reported as its mean with a 95% bootstrap
interval over sentences (1,000 resamples, seeded), with seconds per example for the explaining.
Pictures of the result: ``textlens.render.evaluation``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textlens.errors import TextlensError

METRICS = (
    ("comprehensiveness", "higher"),
    ("sufficiency", "lower"),
    ("deletion_auc", "lower"),
    ("insertion_auc", "higher"),
    ("loo_kendall_tau", "higher"),
    ("completeness", "lower"),
)
RANDOM = "random"


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% bootstrap interval."""

    mean: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class MethodSummary:
    """One method's scores over the sentences: each metric's interval, the mean curves, cost."""

    settings: dict[str, Any]
    seconds_per_example: float
    metrics: dict[str, Interval]
    deletion_curve: list[float]
    insertion_curve: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "seconds_per_example": self.seconds_per_example,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "deletion_curve": self.deletion_curve,
            "insertion_curve": self.insertion_curve,
        }


@dataclass(frozen=True)
class Comparison:
    """Every method compared on the same sentences (``to_dict`` is the JSON report)."""

    model: str
    n: int
    split: str
    removal: str
    seed: int
    methods: dict[str, MethodSummary] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n": self.n,
            "split": self.split,
            "removal": self.removal,
            "seed": self.seed,
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
        }


def bootstrap_interval(
    values: Sequence[float], n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval of the finite values (NaN if none)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, (n_resamples, v.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(v.mean()), float(low), float(high)


def random_scores(adapter: Any, texts: Sequence[str], seed: int) -> list[np.ndarray]:
    """Uniform random token scores: the baseline every method should beat."""
    batch = adapter.encode(list(texts), warn=False)
    rng = np.random.default_rng(seed)
    return [rng.random(int(n)) for n in batch.lengths.tolist()]


def evaluation_settings(method: str) -> dict[str, Any]:
    """The settings a method asks the comparison to use where its defaults do not fit a class
    target (its ``evaluation_settings``)."""
    from textlens.methods import METHODS
    from textlens.methods.base import describe

    return dict(describe(METHODS[method], "evaluation_settings")) if method in METHODS else {}


def compare_methods(
    model: Any = None,
    n: int = 200,
    methods: Sequence[str] | str = "all",
    *,
    removal: str = "delete",
    seed: int = 0,
    progress: bool = True,
) -> Comparison:
    """Explain ``n`` test sentences with each method and score them."""
    from tqdm.auto import tqdm

    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.evaluate.faithfulness import evaluate, evaluate_scores
    from textlens.methods import METHODS
    from textlens.pipeline import explain_many

    every = methods in ("all", ["all"])
    names = [*sorted(METHODS), RANDOM] if every else list(methods)
    unknown = [m for m in names if m not in METHODS and m != RANDOM]
    if unknown:
        raise TextlensError(
            f"unknown method {unknown[0]!r}; available: {', '.join(sorted(METHODS))}, random"
        )
    if n < 2:
        raise TextlensError("--n must be at least 2 (the intervals need several sentences)")
    adapter = load_model(model)
    texts = list(rotten_tomatoes("test").texts[:n])
    rows: dict[str, MethodSummary] = {}
    for name in tqdm(names, desc="methods", disable=not progress):
        began = time.perf_counter()
        if name == RANDOM:
            scores = random_scores(adapter, texts, seed)
            seconds = (time.perf_counter() - began) / len(texts)
            results = evaluate_scores(adapter, texts, scores, removal=removal)  # type: ignore[arg-type]
        else:
            exps = explain_many(texts, adapter, name, **evaluation_settings(name))
            seconds = (time.perf_counter() - began) / len(texts)
            results = evaluate(exps, adapter, removal=removal)  # type: ignore[arg-type]
        summary = {
            metric: bootstrap_interval([getattr(r, metric) for r in results], seed=seed)
            for metric, _ in METRICS
        }
        rows[name] = MethodSummary(
            settings={k: list(v) if isinstance(v, tuple) else v
                      for k, v in evaluation_settings(name).items()},
            seconds_per_example=seconds,
            metrics={k: Interval(*v) for k, v in summary.items()},
            deletion_curve=np.mean([r.deletion_curve for r in results], axis=0).tolist(),
            insertion_curve=np.mean([r.insertion_curve for r in results], axis=0).tolist(),
        )  # fmt: skip
    return Comparison(
        model=adapter.name,
        n=len(texts),
        split="rotten_tomatoes test[:n]",
        removal=removal,
        seed=seed,
        methods=rows,
    )


def markdown_table(report: Comparison) -> str:
    """One row per method: each metric as mean [95% interval], and seconds per example."""

    def cell(m: Interval) -> str:
        if not math.isfinite(m.mean):
            return "n/a"
        return f"{m.mean:.3f} [{m.low:.3f}, {m.high:.3f}]"

    head = ["method", *(f"{k} ({d} is better)" for k, d in METRICS), "s / example"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = sorted(report.methods.items(), key=lambda kv: -kv[1].metrics["comprehensiveness"].mean)
    for name, row in order:
        cells = [cell(row.metrics[k]) for k, _ in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row.seconds_per_example:.3f} |")
    return "\n".join(lines) + "\n"


def write_report(report: Comparison, out_dir: str | Path, stem: str = "evaluation") -> list[Path]:
    """``STEM.md``, ``STEM.json`` and ``STEM-curves.png`` in ``out_dir``."""
    from textlens.render.evaluation import plot_curves
    from textlens.render.export import write_atomic

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise TextlensError(f"folder {out_dir} does not exist: create it first")
    table = markdown_table(report)
    md = write_atomic(out_dir / f"{stem}.md", table)
    body = json.dumps(report.to_dict(), indent=2, allow_nan=True) + "\n"
    js = write_atomic(out_dir / f"{stem}.json", body)
    png = plot_curves(report, out_dir / f"{stem}-curves.png")
    return [md, js, png]

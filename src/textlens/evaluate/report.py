"""Method comparison on the demo classifier's test split: a Markdown table, a PNG, JSON.

Every method explains the same ``n`` test sentences (sub-word level, the predicted class); each
explanation is scored with ``evaluate``; each metric is reported as its mean with a 95% bootstrap
interval over sentences (1,000 resamples, seeded), with seconds per example for the explaining.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Sequence
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


def _interval(values: tuple[float, float, float]) -> dict[str, float]:
    mean, low, high = values
    return {"mean": mean, "low": low, "high": high}


def _random_scores(adapter: Any, texts: Sequence[str], seed: int) -> list[np.ndarray]:
    batch = adapter.encode(list(texts), warn=False)
    rng = np.random.default_rng(seed)
    return [rng.random(int(n)) for n in batch.lengths.tolist()]


def compare_methods(
    model: Any = None,
    n: int = 200,
    methods: Sequence[str] | str = "all",
    *,
    removal: str = "delete",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Explain ``n`` test sentences with each method and score them; returns a JSON-ready dict."""
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
    rows: dict[str, Any] = {}
    for name in tqdm(names, desc="methods", disable=not progress):
        began = time.perf_counter()
        if name == RANDOM:
            scores = _random_scores(adapter, texts, seed)
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
        rows[name] = {
            "settings": {k: list(v) if isinstance(v, tuple) else v
                         for k, v in evaluation_settings(name).items()},
            "seconds_per_example": seconds,
            "metrics": {k: _interval(v) for k, v in summary.items()},
            "deletion_curve": np.mean([r.deletion_curve for r in results], axis=0).tolist(),
            "insertion_curve": np.mean([r.insertion_curve for r in results], axis=0).tolist(),
        }  # fmt: skip
    return {
        "model": adapter.name,
        "n": len(texts),
        "split": "rotten_tomatoes test[:n]",
        "removal": removal,
        "seed": seed,
        "methods": rows,
    }


def markdown_table(report: dict[str, Any]) -> str:
    """One row per method: each metric as mean [95% interval], and seconds per example."""

    def cell(m: dict[str, float]) -> str:
        if not math.isfinite(m["mean"]):
            return "n/a"
        return f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"

    head = ["method", *(f"{k} ({d} is better)" for k, d in METRICS), "s / example"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = sorted(
        report["methods"].items(), key=lambda kv: -kv[1]["metrics"]["comprehensiveness"]["mean"]
    )
    for name, row in order:
        cells = [cell(row["metrics"][k]) for k, _ in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['seconds_per_example']:.3f} |")
    return "\n".join(lines) + "\n"


def plot_curves(report: dict[str, Any], path: str | Path) -> Path:
    """Mean deletion and insertion curves of every method, side by side."""
    from textlens.render.heatmap import _pyplot, save_figure

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for name, row in sorted(report["methods"].items()):
        style = {"ls": "--", "color": "black"} if name == RANDOM else {}
        x = np.linspace(0, 1, len(row["deletion_curve"]))
        left.plot(x, row["deletion_curve"], marker=".", label=name, **style)
        right.plot(x, row["insertion_curve"], marker=".", label=name, **style)
    left.set_title("deletion: top tokens removed first (lower is better)", fontsize=10)
    right.set_title("insertion: top tokens inserted first (higher is better)", fontsize=10)
    for ax in (left, right):
        ax.set_xlabel("fraction of tokens")
        ax.set_ylabel("probability of the predicted class")
        ax.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{report['model']}, {report['n']} test sentences, removal = {report['removal']}")
    out = save_figure(fig, path)
    plt.close(fig)
    return out


def write_report(
    report: dict[str, Any], out_dir: str | Path, stem: str = "evaluation"
) -> list[Path]:
    """``STEM.md``, ``STEM.json`` and ``STEM-curves.png`` in ``out_dir``."""
    from textlens.render.export import write_atomic

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise TextlensError(f"folder {out_dir} does not exist: create it first")
    table = markdown_table(report)
    md = write_atomic(out_dir / f"{stem}.md", table)
    js = write_atomic(out_dir / f"{stem}.json", json.dumps(report, indent=2, allow_nan=True) + "\n")
    png = plot_curves(report, out_dir / f"{stem}-curves.png")
    return [md, js, png]


# Small hand-made word lists for the layer analysis (lower case, whole words).
_SENTIMENT = """
good great best better excellent wonderful brilliant beautiful beautifully gripping funny fun
charming delightful moving powerful smart clever fresh enjoyable entertaining compelling engaging
impressive remarkable perfect superb stunning touching warm witty love loved lovely masterpiece
amazing terrific strong solid rich bad worst worse awful terrible boring dull flat stupid silly
mess messy tedious bland lame weak poor dumb annoying pointless predictable disappointing tired
lifeless forgettable unfunny hate hated ugly painful waste failure fails fail mediocre clumsy
"""
_FUNCTION = """
a an the and or but nor so yet of in on at to for from by with about as into onto over under than
then that this these those it its is are was were be been being has have had do does did not no
i you he she we they me him her us them my your his our their who whom which what when where why
how there here all any some such very too just also if because while though although can could
will would shall should may might must
"""
SENTIMENT_WORDS = frozenset(_SENTIMENT.split())
FUNCTION_WORDS = frozenset(_FUNCTION.split())
GROUPS = ("sentiment", "function", "other words", "punctuation", "special")


def token_groups(exp: Any) -> list[str]:
    """The word group of every token: by the whole word it belongs to."""
    groups = ["special" if s else "other words" for s in exp.special]
    for word in exp.word_groups():
        start, end = exp.offsets[word[0]][0], exp.offsets[word[-1]][1]
        text = exp.text[start:end].lower()
        if not any(ch.isalnum() for ch in text):
            kind = "punctuation"
        elif text in SENTIMENT_WORDS:
            kind = "sentiment"
        elif text in FUNCTION_WORDS:
            kind = "function"
        else:
            kind = "other words"
        for i in word:
            groups[i] = kind
    return groups


def evaluation_settings(method: str) -> dict[str, Any]:
    """The settings a method asks the comparison to use where its defaults do not fit a class
    target (its ``evaluation_settings``)."""
    from textlens.methods import METHODS
    from textlens.methods.base import describe

    return dict(describe(METHODS[method], "evaluation_settings")) if method in METHODS else {}


def layer_method() -> str:
    """The method the layer analysis runs: the first registered one with a ``layer_measure``."""
    from textlens.methods import METHODS

    found = [n for n, c in sorted(METHODS.items()) if getattr(c, "layer_measure", None)]
    if not found:
        raise TextlensError("no method measures information per layer and token")
    return found[0]


def layer_analysis(
    model: Any = None,
    n: int = 200,
    *,
    settings: dict[str, Any] | None = None,
    batch_size: int = 32,
    progress: bool = True,
    method: str | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """A layered method's per-token measure over all layers for ``n`` test sentences, per group.

    The method (by default ``layer_method()``, the information method) names its measure in
    ``layer_measure`` (an extra of axes layer x token: the information loss in nats).

    Returns a JSON-ready dict (mean information loss in nats per group and layer, with token
    counts) and the explanations (to draw a few of them).
    """
    from tqdm.auto import tqdm

    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.methods import METHODS
    from textlens.pipeline import explain_many

    if n < 1:
        raise TextlensError("the layer analysis needs at least one sentence")
    method = method or layer_method()
    measure = METHODS[method].layer_measure  # type: ignore[attr-defined]
    adapter = load_model(model)
    settings = dict(settings or {})
    texts = list(rotten_tomatoes("test").texts[:n])
    began = time.perf_counter()
    exps: list[Any] = []
    for start in tqdm(
        range(0, len(texts), batch_size), desc="layer analysis", disable=not progress
    ):
        chunk = texts[start : start + batch_size]
        exps += explain_many(chunk, adapter, method, batch_size=batch_size, **settings)
    seconds = time.perf_counter() - began
    rows = [
        (token_groups(e), np.asarray(e.extras[measure], float)) for e in exps
    ]  # (layer, token) each
    return {
        "model": adapter.name,
        "n": len(texts),
        "settings": settings,
        "layers": list(exps[0].layers or ()),
        **group_summary(rows),
        "seconds": seconds,
    }, exps


def group_summary(
    rows: Sequence[tuple[Sequence[str], np.ndarray]], n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Per word group and layer: the mean information loss and the mean relative to its sentence.

    ``rows`` holds, per sentence, each token's group and the nats ``(layer, token)``. The
    relative measure subtracts the sentence's mean over its tokens at that layer, which removes
    what differs between whole sentences (H shifts with the sentence's length through
    ``rate / S``); its 95% interval resamples sentences (percentile bootstrap, seeded).
    Groups without tokens get None.
    """
    n_layers = rows[0][1].shape[0] if rows else 0
    # per sentence and group: token count, sum of H and sum of H relative to the sentence
    count = np.zeros((len(rows), len(GROUPS)))
    total = np.zeros((len(rows), len(GROUPS), n_layers))
    relative = np.zeros_like(total)
    for r, (groups, nats) in enumerate(rows):
        centred = nats - nats.mean(axis=1, keepdims=True)
        for g, name in enumerate(GROUPS):
            pick = [i for i, k in enumerate(groups) if k == name]
            count[r, g] = len(pick)
            total[r, g] = nats[:, pick].sum(axis=1)
            relative[r, g] = centred[:, pick].sum(axis=1)
    tokens = count.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = total.sum(0) / tokens[:, None]
        rel = relative.sum(0) / tokens[:, None]
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(rows), size=(n_resamples, len(rows)))
        draws = relative[picks].sum(1) / count[picks].sum(1)[..., None]  # (draw, group, layer)
    with warnings.catch_warnings():  # a group absent from every sentence: all-NaN, reported None
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [2.5, 97.5], axis=0) if len(rows) else (rel, rel)

    def listed(values: np.ndarray, g: int) -> list[float] | None:
        return values[g].tolist() if tokens[g] else None

    return {
        "mean_information_nats": {n: listed(means, g) for g, n in enumerate(GROUPS)},
        "relative_information_nats": {
            n: None
            if not tokens[g]
            else {"mean": rel[g].tolist(), "low": low[g].tolist(), "high": high[g].tolist()}
            for g, n in enumerate(GROUPS)
        },
        "tokens": {n: int(tokens[g]) for g, n in enumerate(GROUPS)},
    }


def layer_table(summary: dict[str, Any]) -> str:
    """Two Markdown tables: the mean information loss per group and layer, and the mean relative
    to each token's sentence with its 95% interval."""
    layers = summary["layers"]
    head = "| group | tokens | " + " | ".join(f"layer {v}" for v in layers) + " |"
    rule = "|" + "---|" * (len(layers) + 2)
    absolute, relative = [head, rule], [head, rule]
    for g in GROUPS:
        row, rel = summary["mean_information_nats"][g], summary["relative_information_nats"][g]
        if row is None:
            continue
        cells = " | ".join(f"{v:.1f}" for v in row)
        absolute.append(f"| {g} | {summary['tokens'][g]} | {cells} |")
        cells = " | ".join(
            f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]"
            for m, lo, hi in zip(rel["mean"], rel["low"], rel["high"], strict=True)
        )
        relative.append(f"| {g} | {summary['tokens'][g]} | {cells} |")
    return (
        "Mean information loss H (nats per token; lower = more of the word reaches the layer):"
        "\n\n" + "\n".join(absolute) + "\n\nRelative to the sentence (H minus the mean H of "
        "the sentence's tokens at that layer), mean [95% bootstrap interval over sentences]:"
        "\n\n" + "\n".join(relative) + "\n"
    )


def write_layer_analysis(
    summary: dict[str, Any], exps: Sequence[Any], out_dir: str | Path, n_examples: int = 3
) -> list[Path]:
    """``layers.md``, ``layers.json``, ``layers-groups.png`` and ``layers-examples.png``."""
    from textlens.render.export import write_atomic
    from textlens.render.heatmap import _pyplot, heatmap, save_figure

    plt = _pyplot()
    out_dir = Path(out_dir)
    groups = [g for g in GROUPS if summary["mean_information_nats"][g] is not None]
    panels = (
        ("mean H (nats)", np.array([summary["mean_information_nats"][g] for g in groups])),
        (
            "H relative to the sentence (nats)",
            np.array([summary["relative_information_nats"][g]["mean"] for g in groups]),
        ),
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained", sharey=True)
    for ax, (label, grid) in zip(axes, panels, strict=True):
        image = ax.imshow(grid, aspect="auto", cmap="viridis_r")
        ax.set_yticks(range(len(groups)))
        ax.set_yticklabels([f"{g} ({summary['tokens'][g]})" for g in groups])
        ax.set_xticks(range(len(summary["layers"])))
        ax.set_xticklabels([str(v) for v in summary["layers"]])
        ax.set_xlabel("layer")
        for (r, c), value in np.ndenumerate(grid):
            dark = (value - grid.min()) > 0.5 * (np.ptp(grid) or 1.0)
            ax.text(
                c, r, f"{round(value)}", ha="center", va="center", fontsize=8,
                color="white" if dark else "black",
            )  # fmt: skip
        fig.colorbar(image, ax=ax, label=label)
    fig.suptitle(
        f"information loss per word group (lower = kept more), {summary['n']} test sentences",
        fontsize=10,
    )
    groups_png = save_figure(fig, out_dir / "layers-groups.png")
    plt.close(fig)
    shown = sorted(exps[: max(n_examples * 4, n_examples)], key=len)[:n_examples]
    fig = heatmap([e.to_words("mean") for e in shown], out_dir / "layers-examples.png")
    plt.close(fig)
    md = write_atomic(out_dir / "layers.md", layer_table(summary))
    js = write_atomic(out_dir / "layers.json", json.dumps(summary, indent=2) + "\n")
    return [md, js, groups_png, out_dir / "layers-examples.png"]

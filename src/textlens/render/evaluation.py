"""Pictures of the evaluation: deletion and insertion curves, and the layer analysis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textlens.render.heatmap import heatmap, pyplot, save_figure


def plot_curves(report: Any, path: str | Path, baseline: str = "random") -> Path:
    """Mean deletion and insertion curves of every method of a ``Comparison``, side by side."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for name, row in sorted(report.methods.items()):
        style = {"ls": "--", "color": "black"} if name == baseline else {}
        x = np.linspace(0, 1, len(row.deletion_curve))
        left.plot(x, row.deletion_curve, marker=".", label=name, **style)
        right.plot(x, row.insertion_curve, marker=".", label=name, **style)
    left.set_title("deletion: top tokens removed first (lower is better)", fontsize=10)
    right.set_title("insertion: top tokens inserted first (higher is better)", fontsize=10)
    for ax in (left, right):
        ax.set_xlabel("fraction of tokens")
        ax.set_ylabel("probability of the predicted class")
        ax.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{report.model}, {report.n} test sentences, removal = {report.removal}")
    out = save_figure(fig, path)
    plt.close(fig)
    return out


def plot_groups(analysis: Any, names: Sequence[str], path: str | Path) -> Path:
    """The layer analysis as two heatmaps: mean H and H relative to the sentence, per group."""
    plt = pyplot()
    summary = analysis.groups
    groups = [g for g in names if summary.mean_information_nats[g] is not None]
    panels = (
        ("mean H (nats)", np.array([summary.mean_information_nats[g] for g in groups])),
        (
            "H relative to the sentence (nats)",
            np.array([summary.relative_information_nats[g]["mean"] for g in groups]),
        ),
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained", sharey=True)
    for ax, (label, grid) in zip(axes, panels, strict=True):
        image = ax.imshow(grid, aspect="auto", cmap="viridis_r")
        ax.set_yticks(range(len(groups)))
        ax.set_yticklabels([f"{g} ({summary.tokens[g]})" for g in groups])
        ax.set_xticks(range(len(analysis.layers)))
        ax.set_xticklabels([str(v) for v in analysis.layers])
        ax.set_xlabel("layer")
        for (r, c), value in np.ndenumerate(grid):
            dark = (value - grid.min()) > 0.5 * (np.ptp(grid) or 1.0)
            ax.text(
                c, r, f"{round(value)}", ha="center", va="center", fontsize=8,
                color="white" if dark else "black",
            )  # fmt: skip
        fig.colorbar(image, ax=ax, label=label)
    fig.suptitle(
        f"information loss per word group (lower = kept more), {analysis.n} test sentences",
        fontsize=10,
    )
    out = save_figure(fig, path)
    plt.close(fig)
    return out


def plot_layer_examples(exps: Sequence[Any], path: str | Path, n_examples: int = 3) -> Path:
    """A few of the shortest explained sentences, layer x word."""
    plt = pyplot()
    shown = sorted(exps[: max(n_examples * 4, n_examples)], key=len)[:n_examples]
    fig = heatmap([e.to_words("mean") for e in shown], path)
    plt.close(fig)
    return Path(path)


def plot_layer_removal(
    rows: dict[str, Sequence[float]], layers: Sequence[int], path: str | Path, title: str
) -> Path:
    """Per-layer comprehensiveness (``textlens.evaluate.layer_removal``) as a heatmap: a row
    per ranking, a column per layer, the value written in each cell."""
    plt = pyplot()
    names = list(rows)
    grid = np.array([np.asarray(rows[k], float) for k in names])
    fig, ax = plt.subplots(figsize=(1.2 * len(layers) + 4.5, 0.45 * len(names) + 1.4))
    image = ax.imshow(grid, aspect="auto", cmap="magma_r", vmin=min(0.0, float(grid.min())))
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([str(v) for v in layers])
    ax.set_xlabel("layer whose hidden states are replaced")
    top = float(grid.max()) or 1.0
    for (r, c), value in np.ndenumerate(grid):
        ax.text(
            c, r, f"{0.0 if abs(value) < 5e-4 else value:.3f}", ha="center", va="center",
            fontsize=8, color="white" if value > 0.55 * top else "black",
        )  # fmt: skip
    fig.colorbar(image, ax=ax, label="comprehensiveness (drop of p)")
    ax.set_title(title, fontsize=10)
    out = save_figure(fig, path)
    plt.close(fig)
    return out

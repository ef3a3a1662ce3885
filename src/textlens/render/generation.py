"""Pictures of a generated answer's explanation: the output x input matrix and a text listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from textlens.render.heatmap import _short, pyplot, save_figure


def generation_heatmap(
    gen: Any,
    path: str | Path | None = None,
    *,
    layer: int | None = None,
    skip_first: bool = True,
) -> Any:
    """Output tokens (rows) x input tokens (columns), diverging colours around 0 for signed
    methods; cells after each output token's prefix are blank.

    Args:
        gen: A ``textlens.generation.Generation``.
        path: Also write the figure here (.png or .svg).
        layer: A layered method's layer (default: its last).
        skip_first: Leave the first input token out of the colour scale: causal LMs pile
            attention and gradient on it (the "attention sink"), which would wash out the rest.
            Its cells are still drawn, clipped to the scale; the legend says so.
    """
    plt = pyplot()
    values = gen.matrix(layer)
    special = np.asarray(gen.special, dtype=bool)
    scaled = values[:, ~special].copy()
    if skip_first and scaled.shape[1] > 1:
        scaled = scaled[:, 1:]
    finite = np.abs(scaled[np.isfinite(scaled)])
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    signed = bool(gen.explanations[0].signed) if gen.explanations else True
    low, cmap = (-top, "RdBu_r") if signed else (0.0, "Reds")
    shown = np.ma.masked_invalid(values)
    n_out, n_in = values.shape
    figure, ax = plt.subplots(figsize=(max(4.0, 0.42 * n_in + 2), max(2.5, 0.32 * n_out + 1.5)))
    image = ax.imshow(shown, cmap=cmap, vmin=low, vmax=top, aspect="auto")
    ax.set_xticks(range(n_in))
    ax.set_xticklabels([_short(t) for t in gen.tokens], rotation=90, fontsize=8)
    ax.set_yticks(range(n_out))
    ax.set_yticklabels(
        [
            f"{_short(t)} ({p:.2f})"
            for t, p in zip(gen.output_tokens, gen.probabilities, strict=True)
        ],
        fontsize=8,
    )
    ax.axvline(gen.n_prompt - 0.5, color="black", linewidth=0.8)
    ax.set_xlabel("input tokens (prompt | generated)")
    ax.set_ylabel("generated token (its probability)")
    which = f", layer {layer}" if layer is not None else ""
    ax.set_title(f"{gen.method}{which}: {gen.prompt[:60]!r}", fontsize=9)
    bar = figure.colorbar(image, ax=ax, fraction=0.04)
    if skip_first:
        bar.set_label("scale leaves out the first token (attention sink)", fontsize=7)
    if path is not None:
        save_figure(figure, path)
    return figure


def generation_text(gen: Any, top: int = 4) -> str:
    """One line per output token: its probability, the step's entropy and its top inputs."""
    lines = []
    for j, (token, exp) in enumerate(zip(gen.output_tokens, gen.explanations, strict=True)):
        row = exp.row()
        keep = [i for i in range(len(row)) if not exp.special[i]]
        order = sorted(keep, key=lambda i: -abs(row[i]) if exp.signed else -row[i])[:top]
        cells = " ".join(f"{exp.tokens[i]}({row[i]:+.3g})" for i in order)
        quoted = f"'{token}'"
        p, h = gen.probabilities[j], gen.entropies[j]
        lines.append(f"{quoted:>14} p={p:.3f} entropy={h:.2f}: {cells}")
    return "\n".join(lines)

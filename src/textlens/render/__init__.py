"""Rendering: plain functions from Explanations to HTML, figures, terminal text and tables.

Nothing here imports torch, so explanations saved as JSON can be rendered anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textlens.evaluate.entropy import attribution_entropy
from textlens.explanation import load_json
from textlens.render.export import (
    save_csv,
    save_json,
    to_csv,
    to_dataframe,
    to_json,
    to_records,
)
from textlens.render.heatmap import (
    heatmap,
    layer_boxplot,
    layer_entropy,
    save_figure,
    subembedding_table,
    subembedding_top,
)
from textlens.render.html import render_html, save_html
from textlens.render.terminal import plain_text, render_terminal

__all__ = [
    "attribution_entropy",
    "heatmap",
    "layer_boxplot",
    "layer_entropy",
    "load_json",
    "plain_text",
    "render_html",
    "render_terminal",
    "save",
    "save_csv",
    "save_figure",
    "save_html",
    "save_json",
    "subembedding_table",
    "subembedding_top",
    "to_csv",
    "to_dataframe",
    "to_json",
    "to_records",
]


def save(explanations: Any, path: str | Path, **options: Any) -> Path:
    """Write explanations in the format the suffix names: .html, .png, .svg, .json or .csv."""
    suffix = Path(path).suffix.lower()
    if suffix in (".html", ".htm"):
        return save_html(explanations, path, **options)
    if suffix in (".png", ".svg"):
        figure = heatmap(explanations, path, **options)
        import matplotlib.pyplot as plt

        plt.close(figure)
        return Path(path)
    if suffix == ".json":
        return save_json(explanations, path)
    if suffix == ".csv":
        return save_csv(explanations, path)
    raise ValueError(f"cannot write {Path(path).name}: use .html, .png, .svg, .json or .csv")

"""Figures (matplotlib, drawn off-screen): layer x token heatmaps and the layer-analysis plots.

Every function returns the matplotlib Figure and, given ``path``, also writes it (PNG or SVG by
the file's suffix) through a temporary file and a rename.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from textlens.outputs import provided_by
from textlens.render._scale import shared_scale
from textlens.render.notes import layer_notes, saturated_note

SUFFIXES = (".png", ".svg")


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - matplotlib is in the plot extra
        raise ImportError("figures need matplotlib: pip install 'textlens[plot]'") from error
    # no backend is chosen here: a notebook keeps its own (and the user's later plots show);
    # without a display, matplotlib picks Agg by itself
    del matplotlib
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: str | Path, dpi: int = 150) -> Path:
    """Write a figure as PNG or SVG (by suffix), atomically."""
    import io

    from textlens.render.export import write_atomic

    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"cannot write {path.name}: use a .png or .svg file name")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix[1:].lower(), dpi=dpi, bbox_inches="tight")
    return write_atomic(path, buffer.getvalue())


LABEL_CHARS = 24  # longer labels (sentences) are cut, with an ellipsis


def _short(label: str) -> str:
    label = " ".join(label.split())
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"


def _labels(exp: Any, keep: np.ndarray) -> list[str]:
    return [_short(t) for t, k in zip(exp.tokens, keep, strict=True) if k]


def heatmap(
    explanations: Any,
    path: str | Path | None = None,
    *,
    show_special: bool = False,
    title: str | None = None,
    shared: bool = True,
) -> Any:
    """Layer x token heatmaps, one panel per explanation, on one shared colour scale.

    Args:
        explanations: A layered Explanation (information loss over layers, layer conductance,
            attention) or several; a token-level one is drawn as a single row.
        path: Optional ``.png`` / ``.svg`` to write.
        show_special: Draw the [CLS] / [SEP] columns (they then count in the colour range).
        title: Figure title; default names the method and the target.
        shared: One colour scale for all panels (True), so that layers and sentences compare;
            False scales each panel on its own.
    """
    plt = pyplot()
    exps = [explanations] if hasattr(explanations, "scores") else list(explanations)
    if not exps:
        raise ValueError("nothing to draw: give at least one explanation")
    widest = max(len(e) for e in exps)
    rows = [e.scores.shape[0] if e.layered else 1 for e in exps]
    width = min(40.0, max(6.0, 0.32 * widest + 2.5))
    label_room = 0.09 * max(len(_short(t)) for e in exps for t in e.tokens) + 0.5  # rotated labels
    room = max(40, int(width * 11))  # characters of a 9-point line across the panel
    notes = [
        [textwrap.fill(n, room) for n in [*layer_notes(e, show_special), saturated_note(e)] if n]
        for e in exps
    ]
    lines = [sum(n.count("\n") + 1 for n in own) for own in notes]
    panels = [0.32 * r + 0.5 + label_room + 0.17 * k for r, k in zip(rows, lines, strict=True)]
    fig, axes = plt.subplots(
        len(exps),
        1,
        figsize=(width, sum(panels) + 0.6),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": panels},
    )
    scale = shared_scale(exps, special=show_special)
    image = None
    for ax, exp, own_notes in zip(axes[:, 0], exps, notes, strict=True):
        own = scale if shared else shared_scale([exp], special=show_special)
        keep = np.ones(len(exp), bool) if show_special else ~np.asarray(exp.special, bool)
        values = np.atleast_2d(exp.scores)[:, keep]
        image = ax.imshow(
            values,
            aspect="auto",
            cmap=own.cmap(),
            vmin=own.vmin,
            vmax=own.vmax,
            interpolation="nearest",
        )
        _hatch(ax, exp, keep)
        ax.set_xticks(range(values.shape[1]))
        ax.set_xticklabels(_labels(exp, keep), rotation=60, ha="right", fontsize=8)
        if exp.layered:
            names = exp.layers or tuple(range(values.shape[0]))
            ax.set_yticks(range(values.shape[0]))
            ax.set_yticklabels([str(n) for n in names], fontsize=8)
            ax.set_ylabel("layer")
        else:
            ax.set_yticks([])
        ax.set_title("\n".join([_panel_title(exp), *own_notes]), fontsize=9, loc="left")
        if not shared:
            fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    if shared and image is not None:
        bar = fig.colorbar(image, ax=list(axes[:, 0]), fraction=0.025, pad=0.01, aspect=30)
        bar.set_label(_score_name(exps[0]), fontsize=8)
    if title is None:
        title = f"{exps[0].method}: layer x token" if exps[0].layered else exps[0].method
    fig.suptitle(title, fontsize=11)
    if path is not None:
        save_figure(fig, path)
    return fig


def _hatch(ax: Any, exp: Any, keep: np.ndarray) -> None:
    """Hatch the cells of saturated tokens (all their information lost to Phi)."""
    flags = exp.saturated
    if flags is None:
        return
    from matplotlib.patches import Rectangle

    cells = np.atleast_2d(flags)[:, keep]
    for r, c in zip(*np.nonzero(cells), strict=True):
        ax.add_patch(
            Rectangle(
                (c - 0.5, r - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#333333",
                linewidth=0.0,
            )
        )  # fmt: skip


def _panel_title(exp: Any) -> str:
    t = exp.target
    label = t.label if t.label is not None else t.kind
    detail = f" (p={t.probability:.3f})" if t.probability is not None else ""
    text = exp.text if len(exp.text) <= 70 else exp.text[:67] + "..."
    return f"target {label}{detail} · {text!r}"


def _score_name(exp: Any) -> str:
    if exp.score_label:
        return exp.score_label
    return "attribution (+ for target)" if exp.signed else "importance"


def subembedding_top(exp: Any, k: int = 5) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` tokens with the largest attribution in each sub-embedding.

    Needs an explanation whose scores come in parts (``exp.parts``, e.g. the sub-embeddings
    ``word``, ``position``, ``token_type``). Special tokens are left out.
    """
    parts = list(exp.parts)
    if not parts:
        raise ValueError(f"this explanation has no sub-embedding parts: use {provided_by('parts')}")
    out = {}
    for part in parts:
        values = np.asarray(exp.extras[part], float)
        order = [i for i in np.argsort(-values, kind="stable") if not exp.special[i]]
        out[part] = [(exp.tokens[i], float(values[i])) for i in order[:k]]
    return out


def subembedding_table(exp: Any, k: int = 5) -> str:
    """``subembedding_top`` as a Markdown table: one column pair per sub-embedding."""
    top = subembedding_top(exp, k)
    head = " | ".join(f"{p} token | {p} score" for p in top)
    lines = [f"| rank | {head} |", "|---" * (1 + 2 * len(top)) + "|"]
    for r in range(k):
        cells = []
        for pairs in top.values():
            tok, val = pairs[r] if r < len(pairs) else ("", float("nan"))
            cells += [tok.replace("|", "\\|"), f"{val:+.4f}" if np.isfinite(val) else ""]
        lines.append(f"| {r + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _token_index(exp: Any, token: int | str) -> int:
    if isinstance(token, int | np.integer):
        if not 0 <= int(token) < len(exp):
            raise ValueError(f"token {token} is out of range; valid: 0..{len(exp) - 1}")
        return int(token)
    matches = [i for i, t in enumerate(exp.tokens) if t == token]
    if not matches:
        raise ValueError(f"token {token!r} is not in this explanation; tokens: {list(exp.tokens)}")
    return matches[0]


def _unit_scores(exp: Any) -> np.ndarray:
    """The extra with per-unit scores: axes ``(layer, unit, token)`` as the method declared."""
    names = [k for k, axes in exp.extra_axes.items() if axes == ("layer", "unit", "token")]
    units = exp.extras[names[0]] if names else None
    if units is None or not exp.layered:
        raise ValueError(f"this needs per-unit scores: use {provided_by('units')}")
    return np.asarray(units, float)  # (layer, unit, token)


def layer_boxplot(exp: Any, token: int | str, path: str | Path | None = None) -> Any:
    """For one token, the distribution of its per-unit attributions in every layer (box plots)."""
    plt = pyplot()
    units = _unit_scores(exp)
    i = _token_index(exp, token)
    names = exp.layers or tuple(range(units.shape[0]))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(names) + 2), 3.8))
    ax.boxplot([units[j, :, i] for j in range(units.shape[0])], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels([str(n) for n in names])
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_xlabel("layer")
    ax.set_ylabel("attribution per hidden unit")
    ax.set_title(f"{exp.method}: token {exp.tokens[i]!r} (#{i}) across layers", fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig


def layer_entropy(
    exp: Any,
    token: int | str | None = None,
    path: str | Path | None = None,
    bins: int = 20,
) -> Any:
    """Per-layer attribution entropy drawn against the layer's total attribution.

    With ``token`` (and per-unit scores, e.g. layer conductance with ``keep_units=True``) the
    histogram is over that token's hidden units; without it, over the layer's token scores.
    The figure's ``entropy`` and ``total`` attributes hold the plotted numbers.
    """
    plt = pyplot()
    if not exp.layered:
        raise ValueError("layer_entropy needs a layered explanation (layer x token)")
    keep = ~np.asarray(exp.special, bool)
    if token is not None:
        i = _token_index(exp, token)
        per_layer = [row[:, i] for row in _unit_scores(exp)]
        what = f"token {exp.tokens[i]!r}"
    else:
        per_layer = [row[keep] for row in np.asarray(exp.scores, float)]
        what = "all tokens"
    from textlens.evaluate.entropy import attribution_entropy

    entropy = np.array([attribution_entropy(v, bins) for v in per_layer])
    total = np.array([float(np.nansum(v)) for v in per_layer])
    names = exp.layers or tuple(range(len(per_layer)))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(names) + 2), 3.8))
    x = np.arange(len(names))
    ax.bar(x, total, color="#9ecae1", label="total attribution")
    ax.set_ylabel("total attribution")
    ax.set_xticks(x)
    ax.set_xticklabels([str(n) for n in names])
    ax.set_xlabel("layer")
    twin = ax.twinx()
    twin.plot(x, entropy, color="#cb181d", marker="o", label="entropy (nats)")
    twin.set_ylabel("entropy (nats)", color="#cb181d")
    ax.set_title(f"{exp.method}: attribution entropy per layer, {what}", fontsize=10)
    fig.entropy, fig.total = entropy, total
    if path is not None:
        save_figure(fig, path)
    return fig

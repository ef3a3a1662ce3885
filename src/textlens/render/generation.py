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
    if getattr(gen, "n_source", 0):  # an encoder-decoder: source | decoder's start | output
        ax.axvline(gen.n_source - 0.5, color="black", linewidth=0.8)
        ax.set_xlabel("input tokens (source | decoder start | generated)")
    else:
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


def generation_view(gen: Any, *, layer: int | None = None, skip_first: bool = True) -> dict:
    """What a page needs to show a generated answer's explanation, as plain data: the tokens
    (prompt, then output), each output token's row of colours and scores over the tokens before
    it (one colour scale for every row; special and template tokens uncoloured, the first token
    left out of the scale unless ``skip_first`` is False), the step scores and the legend."""
    from textlens.render._scale import Scale, fmt

    values = gen.matrix(layer)
    special = np.asarray(gen.special, dtype=bool)
    keep = ~special
    if skip_first and keep.size:
        keep = keep.copy()
        keep[0] = False
    scaled = values[:, keep]
    finite = scaled[np.isfinite(scaled)]
    signed = bool(gen.explanations[0].signed) if gen.explanations else True
    if signed:
        scale = Scale(True, float(np.abs(finite).max()) if finite.size else 1.0)
    else:
        low = float(finite.min()) if finite.size else 0.0
        scale = Scale(False, float(finite.max()) if finite.size else 1.0, low)
    colours = [
        [
            "" if special[i] or not np.isfinite(values[j, i]) else scale.hex(values[j, i])
            for i in range(values.shape[1])
        ]
        for j in range(values.shape[0])
    ]
    return {
        "method": gen.method,
        "model": gen.model,
        "layer": layer,
        "tokens": list(gen.tokens),
        "n_prompt": gen.n_prompt,
        "special": [bool(v) for v in special],
        "roles": list(gen.roles) if gen.roles else [],
        "output_tokens": list(gen.output_tokens),
        "probabilities": [float(v) for v in gen.probabilities],
        "entropies": [float(v) for v in gen.entropies],
        "colours": colours,
        "tips": [["" if not np.isfinite(v) else fmt(float(v)) for v in row] for row in values],
        "scale": {
            "low": fmt(scale.vmin),
            "high": fmt(scale.vmax),
            "stops": [scale.hex(v) for v in np.linspace(scale.vmin, scale.vmax, 9)],
            "note": "the first token is left out of the scale: attention sink"
            if skip_first
            else "",
        },
    }


def generation_html(gen: Any, *, layer: int | None = None, skip_first: bool = True) -> str:
    """A self-contained page: the prompt and the answer as text; hovering or clicking an output
    token colours every token before it by its score for that output token.

    The colour scale is shared by all rows; special and template tokens stay uncoloured, and the
    first token (a causal LM's attention sink) is left out of the scale unless ``skip_first`` is
    False (the legend says which).
    """
    import html
    import json as jsonlib

    view = generation_view(gen, layer=layer, skip_first=skip_first)
    special = view["special"]
    spans = []
    for i, token in enumerate(gen.tokens):
        out = i - gen.n_prompt
        role = gen.roles[i] if gen.roles else ""
        cls = "tl-out" if out >= 0 else "tl-in"
        data = f' data-row="{out}"' if out >= 0 else ""
        spans.append(
            f'<span class="{cls}{" tl-special" if special[i] else ""}" data-i="{i}"{data} '
            f'title="{html.escape(role)}">{html.escape(token)}</span>'
        )
        if i == gen.n_prompt - 1:
            spans.append('<span class="tl-gap">&#9656;</span>')
    scale = view["scale"]
    stops = ", ".join(scale["stops"])
    sink = f" ({scale['note']})" if scale["note"] else ""
    which = f", layer {layer}" if layer is not None else ""
    steps = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{p:.3f}</td><td>{h:.2f}</td></tr>"
        for t, p, h in zip(gen.output_tokens, gen.probabilities, gen.entropies, strict=True)
    )
    payload = jsonlib.dumps({"colours": view["colours"], "tips": view["tips"]})
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>textlens: {html.escape(gen.method)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; }}
.tl-text span {{ padding: 1px 2px; margin: 1px; border-radius: 3px; display: inline-block; }}
.tl-out {{ border-bottom: 2px solid #888; cursor: pointer; }}
.tl-out.tl-active {{ outline: 2px solid #111; }}
.tl-special {{ color: #999; }}
.tl-bar {{ display: inline-block; width: 12em; height: 0.9em; margin: 0 0.5em; }}
table {{ border-collapse: collapse; margin-top: 1em; }} td, th {{ padding: 2px 8px; }}
</style></head><body>
<h3>{html.escape(gen.method)}{which}: what each generated token depends on</h3>
<p>Hover over or click a generated (underlined) token: every token before it is coloured by its
score for that token. Model: {html.escape(gen.model)}.</p>
<div class="tl-text">{"".join(spans)}</div>
<p>colour scale{html.escape(sink)}: {scale["low"]}
<span class="tl-bar" style="background:linear-gradient(to right, {stops})"></span>
{scale["high"]}</p>
<table><tr><th>generated token</th><th>probability</th><th>entropy (nats)</th></tr>{steps}</table>
<script>
const data = {payload};
const spans = document.querySelectorAll(".tl-text span[data-i]");
function show(row) {{
  spans.forEach(s => {{
    const i = +s.dataset.i, c = data.colours[row][i];
    s.style.background = c || "";
    s.title = data.tips[row][i] ? "score " + data.tips[row][i] : "";
    s.classList.toggle("tl-active", s.dataset.row === String(row));
  }});
}}
document.querySelectorAll(".tl-out").forEach(s => {{
  s.addEventListener("mouseenter", () => show(+s.dataset.row));
  s.addEventListener("click", () => show(+s.dataset.row));
}});
if (data.colours.length) show(0);
</script></body></html>
"""

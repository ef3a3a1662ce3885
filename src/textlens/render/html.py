"""Highlighted text as HTML: a standalone page (inline CSS, no external assets) or a fragment.

Each explanation is one row, so that methods (or layers) can be compared side by side. Every piece
of user text goes through ``html.escape``: an input holding ``<script>`` renders as text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textlens.render._scale import Scale, fmt, shared_scale
from textlens.render.notes import baseline_note, layer_notes, saturated_note, unit_note

CSS = """
.tl-root{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;
  max-width:1100px;margin:1.5em auto;padding:0 1em;line-height:1.5}
.tl-root h1{font-size:1.3em;margin:0 0 .6em}
.tl-legend{display:flex;align-items:center;gap:.6em;font-size:.85em;margin:.4em 0 1em}
.tl-bar{width:240px;height:12px;border:1px solid #bbb;border-radius:2px}
.tl-row{border-top:1px solid #ddd;padding:.6em 0}
.tl-meta{font-size:.85em;color:#444;margin-bottom:.3em}
.tl-meta b{color:#111}
.tl-note{color:#7a4b00}
.tl-layer{display:flex;gap:.6em;align-items:baseline}
.tl-layer-name{font-size:.8em;color:#666;min-width:4.5em;text-align:right}
.tl-text{white-space:pre-wrap;font-size:1.05em}
.tl-tok{border-radius:3px;padding:1px 1px}
.tl-sat{outline:1px dotted #444;
background-image:repeating-linear-gradient(135deg,transparent 0 3px,rgba(0,0,0,.35) 3px 4px)}
.tl-doc{border-left:3px solid #ccc;padding-left:.5em;margin:.3em 0}
.tl-doc summary{cursor:pointer;font-size:.85em;color:#444}
.tl-special{font-size:.75em;color:#555;border:1px dashed #aaa;border-radius:3px;padding:0 2px;
  margin:0 2px}
"""


def render_html(
    explanations: Any,
    *,
    title: str = "textlens explanations",
    words: bool = False,
    unit: str | None = None,
    show_special: bool = False,
    layers: Sequence[int] | None = None,
    standalone: bool = True,
) -> str:
    """HTML for one or many explanations, one row each; rows of one method share a scale.

    Args:
        explanations: An Explanation or a sequence of them.
        title: Page heading (escaped).
        words: Merge sub-words into words first (``unit="word"``).
        unit: ``"token"``, ``"word"`` or ``"sentence"``: merge sub-words into these units first
            (``to_units``, each method's own reduction).
        show_special: Show special tokens ([CLS], [SEP]) as small boxed chips.
        layers: For layered explanations, the layer numbers to show (default: all of them,
            one line per layer).
        standalone: A whole page (``<!DOCTYPE html>`` ...); False gives a ``<div>`` for notebooks.

    Returns:
        The HTML as a string; nothing is fetched from the network when it is opened.
    """
    exps = _as_list(explanations)
    unit = unit or ("word" if words else None)
    if unit:
        exps = [e.to_units(unit) for e in exps]
    if layers is not None:
        exps = [e.select(layers) if e.layered else e for e in exps]
    # one scale per method: rows of one method compare directly; different methods have
    # different units, so each gets its own range and legend
    methods = list(dict.fromkeys(e.method for e in exps))
    scales = {
        m: shared_scale([e for e in exps if e.method == m], special=show_special) for m in methods
    }
    parts = [f'<div class="tl-root"><style>{CSS}</style>']
    if standalone:
        parts.append(f"<h1>{html.escape(title)}</h1>")
    for m in methods:
        parts.append(_legend(scales[m], m if len(methods) > 1 else None))
    for i, exp in enumerate(exps):
        parts.append(_row(exp, scales[exp.method], i, show_special))
    parts.append("</div>")
    body = "\n".join(parts)
    if not standalone:
        return body
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def save_html(explanations: Any, path: str | Path, **options: Any) -> Path:
    """Write ``render_html(...)`` to ``path`` through a temporary file and a rename."""
    from textlens.render.export import write_atomic

    return write_atomic(Path(path), render_html(explanations, **options))


def _as_list(explanations: Any) -> list[Any]:
    if hasattr(explanations, "scores"):
        return [explanations]
    exps = list(explanations)
    if not exps:
        raise ValueError("nothing to render: give at least one explanation")
    return exps


def _legend(scale: Scale, method: str | None) -> str:
    stops = ", ".join(scale.hex(v) for v in np.linspace(scale.vmin, scale.vmax, 9))
    if scale.signed:
        left, right = f"{fmt(scale.vmin)} against", f"for {fmt(scale.vmax)}"
        middle = "0"
    else:
        left, right, middle = f"{fmt(scale.vmin)} less", f"more {fmt(scale.vmax)}", "importance"
    return (
        '<div class="tl-legend"><span>colour scale'
        + (f" of <b>{html.escape(method)}</b>" if method else " (shared by all rows)")
        + ":</span>"
        f"<span>{left}</span>"
        f'<span class="tl-bar" style="background:linear-gradient(to right, {stops})" '
        f'title="{middle}"></span><span>{right}</span></div>'
    )


def _meta(exp: Any) -> str:
    t = exp.target
    what = html.escape(str(t.label if t.label is not None else t.kind))
    bits = [f"<b>{html.escape(exp.method)}</b>"]
    params = {k: v for k, v in exp.params.items() if k != "word_reduce"}
    if params:
        listing = ", ".join(f"{k}={v}" for k, v in params.items())
        bits.append(f"({html.escape(listing)})")
    if t.explained:
        bits.append(f"&middot; explains <b>{html.escape(t.explained)}</b>")
    else:
        bits.append(f"&middot; target <b>{what}</b>")
        if t.probability is not None:
            bits.append(f"p={t.probability:.3f}")
        elif t.score is not None:
            bits.append(f"score={t.score:.3f}")
    if exp.model:
        bits.append(f"&middot; model {html.escape(exp.model)}")
    bits.append(f"&middot; {html.escape(unit_note(exp))}")
    note = baseline_note(exp)
    if note:
        bits.append(f'<div class="tl-note">{html.escape(note)}</div>')
    return '<div class="tl-meta">' + " ".join(bits) + "</div>"


def _row(exp: Any, scale: Scale, index: int, show_special: bool) -> str:
    lines = []
    saturated = exp.saturated
    if exp.layered:
        names = exp.layers or tuple(range(exp.scores.shape[0]))
        for i, (name, row) in enumerate(zip(names, exp.scores, strict=True)):
            flags = None if saturated is None else saturated[i]
            text = _highlight(exp, row, scale, show_special, flags)
            lines.append(
                f'<div class="tl-layer"><span class="tl-layer-name">layer {name}</span>'
                f'<span class="tl-text">{text}</span></div>'
            )
    elif getattr(exp, "documents", ()):
        lines.append(f'<div class="tl-text">{_documents(exp, scale, show_special)}</div>')
    else:
        text = _highlight(exp, exp.scores, scale, show_special, saturated)
        lines.append(f'<div class="tl-text">{text}</div>')
    note = saturated_note(exp)
    if note is not None:
        lines.append(f'<div class="tl-note">{html.escape(note)}</div>')
    for note in layer_notes(exp, show_special):
        lines.append(f'<div class="tl-note">{html.escape(note)}</div>')
    return f'<div class="tl-row" data-row="{index}">{_meta(exp)}' + "".join(lines) + "</div>"


def _documents(exp: Any, scale: Scale, show_special: bool) -> str:
    """The text of a prompt built from documents: the text between documents as it is, each
    document folded under a line with its number and total score (the highest-scoring one
    open), its tokens, words or sentences coloured inside."""
    totals = [
        float(sum(v for v, (a, _) in zip(exp.scores, exp.offsets, strict=True) if lo <= a < hi))
        for lo, hi in exp.documents
    ]
    top = max(range(len(totals)), key=lambda k: abs(totals[k])) if totals else -1
    out, cursor = [], 0
    for k, (lo, hi) in enumerate(exp.documents):
        out.append(_highlight(exp, exp.scores, scale, show_special, None, (cursor, lo)))
        inside = _highlight(exp, exp.scores, scale, show_special, None, (lo, hi))
        out.append(
            f'<details class="tl-doc" data-document="{k + 1}"{" open" if k == top else ""}>'
            f"<summary>document {k + 1} · total {fmt(totals[k])}</summary>{inside}</details>"
        )
        cursor = hi
    out.append(_highlight(exp, exp.scores, scale, show_special, None, (cursor, len(exp.text))))
    return "".join(out)


def _highlight(
    exp: Any,
    scores: Iterable[float],
    scale: Scale,
    show_special: bool,
    saturated: Any = None,
    within: tuple[int, int] | None = None,
) -> str:
    """The text with each token's span coloured; the gaps between tokens kept as written;
    ``saturated`` tokens hatched; ``within``: only these characters of the text."""
    text = exp.text
    lo, hi = within if within is not None else (0, len(text))
    out, cursor = [], lo
    flags = [False] * len(exp.tokens) if saturated is None else [bool(f) for f in saturated]
    for token, (start, end), special, value, sat in zip(
        exp.tokens, exp.offsets, exp.special, scores, flags, strict=True
    ):
        if within is not None:
            if not (lo <= start < hi or start == hi == len(text)):
                continue
            end = min(end, hi)
        if special or end <= start:
            if show_special:
                out.append(
                    f'<span class="tl-special" title="{html.escape(token)}: {fmt(value)}">'
                    f"{html.escape(token)}</span>"
                )
            continue
        if start > cursor:
            out.append(html.escape(text[cursor:start]))
        piece = text[max(start, cursor) : end]
        if piece:
            said = " (saturated: none of its information reaches Phi)" if sat else ""
            tip = html.escape(f"{token}: {fmt(value)}{said}", quote=True)
            kind = "tl-tok tl-sat" if sat else "tl-tok"
            out.append(
                f'<span class="{kind}" data-score="{fmt(value)}" title="{tip}" '
                f'style="background-color:{scale.hex(value)};color:{scale.ink(value)}">'
                f"{html.escape(piece)}</span>"
            )
        cursor = max(cursor, end)
    if cursor < hi:
        out.append(html.escape(text[cursor:hi]))
    return "".join(out)

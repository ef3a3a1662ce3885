"""Coloured tokens in a terminal (rich), and plain text when the output is a pipe or a file."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import numpy as np

from textlens.render._scale import Scale, fmt, shared_scale
from textlens.render.notes import saturated_note


def render_terminal(
    explanation: Any,
    *,
    file: TextIO | None = None,
    color: bool | None = None,
    show_special: bool = False,
    layers: Any = None,
) -> None:
    """Print an explanation's tokens coloured by score, one line per layer if layered.

    Args:
        explanation: An Explanation.
        file: Where to write (default: standard output).
        color: Force colours on or off; None colours only when ``file`` is a terminal, so
            pipes and files never receive escape codes.
        show_special: Include special tokens ([CLS], [SEP]).
        layers: For layered explanations, the layer numbers to print (default: all).
    """
    out = file or sys.stdout
    exp = explanation.select(layers) if layers is not None and explanation.layered else explanation
    use_color = _is_tty(out) if color is None else color
    if not use_color:
        out.write(plain_text(exp, show_special=show_special))
        return
    from rich.console import Console

    console = Console(file=out, force_terminal=True, color_system="truecolor", highlight=False)
    scale = shared_scale([exp], special=show_special)
    for (label, row), flags in zip(_rows(exp), _flags(exp), strict=True):
        console.print(_rich_line(exp, row, scale, label, show_special, flags), soft_wrap=True)
    note = saturated_note(exp, mark="underlined, ~ in plain text")
    if note:
        console.print(note, style="dim")
    console.print(_rich_legend(scale))


def plain_text(exp: Any, *, show_special: bool = False) -> str:
    """``token(+0.123)`` pairs, one line per layer (``~token`` when saturated); no escape
    codes."""
    lines = []
    for (label, row), flags in zip(_rows(exp), _flags(exp), strict=True):
        cells = [
            f"{'~' if sat else ''}{tok}({fmt(v)})"
            for tok, v, sp, sat in zip(exp.tokens, row, exp.special, flags, strict=True)
            if show_special or not sp
        ]
        lines.append((f"{label}: " if label else "") + " ".join(cells))
    note = saturated_note(exp, mark="~")
    if note:
        lines.append(note)
    return "\n".join(lines) + "\n"


def _flags(exp: Any) -> list[Any]:
    """Per row of ``_rows``, each token's saturation flag."""
    flags = exp.saturated
    if flags is None:
        flags = np.zeros(np.shape(exp.scores), bool)
    return list(flags) if exp.layered else [flags]


def _is_tty(out: Any) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


def _rows(exp: Any) -> list[tuple[str, Any]]:
    if exp.layered:
        names = exp.layers or tuple(range(len(exp.scores)))
        return [(f"layer {n:>2}", row) for n, row in zip(names, exp.scores, strict=True)]
    return [("", exp.scores)]


def _rich_line(exp: Any, row: Any, scale: Scale, label: str, show_special: bool, flags: Any) -> Any:
    from rich.text import Text

    line = Text()
    if label:
        line.append(f"{label}: ", style="dim")
    for tok, value, special, sat in zip(exp.tokens, row, exp.special, flags, strict=True):
        if special and not show_special:
            continue
        r, g, b = scale.rgb(value)
        ink = "white" if scale.ink(value) == "#ffffff" else "black"
        line.append(tok, style=f"{ink} on rgb({r},{g},{b})" + (" underline" if sat else ""))
        line.append(" ")
    return line


def _rich_legend(scale: Scale) -> Any:
    from rich.text import Text

    legend = Text()
    legend.append("scale: ", style="dim")
    for i in range(9):
        value = scale.vmin + (scale.vmax - scale.vmin) * i / 8
        r, g, b = scale.rgb(value)
        legend.append("  ", style=f"on rgb({r},{g},{b})")
    legend.append(f"  {fmt(scale.vmin)} .. {fmt(scale.vmax)}", style="dim")
    return legend

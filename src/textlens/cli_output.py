"""What the ``textlens explain`` command prints and writes for a request's outcome."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from textlens.errors import TextlensError


class Progress:
    """Prints a run's cost estimate and progress on standard error: always on a terminal,
    elsewhere only when the run is expected to take longer than ``LONG_RUN`` seconds."""

    LONG_RUN = 10.0

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def __call__(self, message: str, seconds: float | None) -> None:
        if seconds is not None:
            self.shown = self.shown or seconds > self.LONG_RUN
        if self.shown:
            click.echo(message, err=True)


def check_outputs(html: str | None, png: str | None, json_path: str | None) -> None:
    """Refuse outputs that cannot be written, before any work."""
    for path in (html, png, json_path):
        if path:
            check_writable(Path(path))
    if png and Path(png).suffix.lower() not in (".png", ".svg"):
        raise TextlensError(f"--png needs a .png or .svg file name, not {Path(png).name}")


def check_writable(path: Path) -> None:
    """Refuse an output file that cannot be written, before any work is done."""
    import os

    folder = path.parent
    if not folder.exists():
        raise TextlensError(f"folder {folder} does not exist: create it first")
    if not folder.is_dir():
        raise TextlensError(f"{folder} is not a folder: choose another output path")
    if path.is_dir():
        raise TextlensError(f"{path} is a folder: give a file name")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TextlensError(f"folder {folder} is not writable: choose another output path")


def show_explanations(request: Any, adapter: Any, exps: list[Any]) -> None:
    """Print each Explanation: the prediction (first), what is explained, the scores."""
    for k, exp in enumerate(exps):
        if request.pair is not None:
            side = "first" if k % 2 == 0 else "second"
            click.echo(
                f"explaining: {exp.target.kind} of the pair, {exp.target.score:.4f}; the {side} "
                "text's words"
            )
        elif k == 0:
            print_prediction(adapter, exp)
        elif exp.target.label != exps[k - 1].target.label and not exp.target.explained:
            t = exp.target  # the next of several labels
            click.echo(f"explaining: {t.label} ({t.kind}, model score {t.score:.3f})")
        elif exp.target.explained:  # a later method that explains something else says so
            click.echo(f"explaining: {exp.target.explained}")
        print_scores(exp)


def write_explanations(
    exps: list[Any], html: str | None, png: str | None, json_path: str | None
) -> None:
    from textlens import render

    if html:
        render.save_html(exps, html, title=f"textlens: {exps[0].text[:60]}")
        click.echo(f"wrote {html}")
    if png:
        drawn = [e for e in exps if e.layered] or exps
        render.save(drawn, png, shared=len({e.method for e in drawn}) == 1)
        click.echo(f"wrote {png}")
    if json_path:
        body = exps[0].to_json(indent=2) if len(exps) == 1 else render.to_json(exps)
        render.export.write_atomic(Path(json_path), body + "\n")
        click.echo(f"wrote {json_path}")


def show_answers(
    request: Any, gens: list[Any], html: str | None, png: str | None, json_path: str | None
) -> None:
    """Print and write the explanations of a generated (or given) answer, one per method."""
    from textlens.render.export import write_atomic
    from textlens.render.generation import generation_heatmap, generation_html, generation_text

    for i, gen in enumerate(gens):
        if i == 0:
            kind = "generated" if request.generate is not None else "continuation"
            click.echo(f"{kind}: {gen.continuation!r} ({len(gen.output_tokens)} tokens)")
        shown = ", ".join(f"{k}={v}" for k, v in gen.explanations[0].params.items())
        click.echo(f"method: {gen.method}" + (f" ({shown})" if shown else ""))
        click.echo(generation_text(gen))
    if png:
        generation_heatmap(gens[-1], png)
        click.echo(f"wrote {png}")
    if html:
        write_atomic(Path(html), generation_html(gens[-1]))
        click.echo(f"wrote {html}")
    if json_path:
        body = [g.to_dict() for g in gens]
        write_atomic(
            Path(json_path), json.dumps(body[0] if len(body) == 1 else body, indent=2) + "\n"
        )
        click.echo(f"wrote {json_path}")


def print_prediction(adapter: Any, exp: Any) -> None:
    t = exp.target
    if adapter.task == "sequence-classification":
        known = t.prediction()  # from the explanation's own forward pass
        probs = known[1] if known else adapter.class_probabilities(exp.text)
        listing = "  ".join(f"{name} {p:.3f}" for name, p in probs.items())
        predicted = max(probs, key=probs.get)
        click.echo(f"prediction: {predicted}   ({listing})")
        if t.explained:
            click.echo(f"explaining: {t.explained}")
        else:
            click.echo(f"explaining: {t.label} ({t.kind}, model score {t.score:.3f})")
    elif t.explained:
        click.echo(f"explaining: {t.explained}")
    else:
        shown = t.label if t.label is None or t.label == t.label.strip() else repr(t.label)
        detail = f" {shown}" if t.label is not None else ""
        click.echo(f"explaining: {t.kind}{detail}  (model score {t.score:.3f})")


def print_scores(exp: Any) -> None:
    from textlens.render import render_terminal
    from textlens.render.notes import unit_note

    params = ", ".join(f"{k}={v}" for k, v in exp.params.items() if k != "word_reduce")
    click.echo(f"method: {exp.method}" + (f" ({params})" if params else ""))
    if exp.level != "subword":
        click.echo(unit_note(exp))
    sys.stdout.flush()
    render_terminal(exp, file=sys.stdout)
    for line in diagnostic_lines(exp):
        click.echo(line)


def diagnostic_lines(exp: Any) -> list[str]:
    """The lines printed after the scores: the method's ``diagnostics``, then the notes."""
    import numpy as np

    from textlens.render.notes import baseline_note, layer_notes

    lines = []
    for extra, label in exp.diagnostics:
        value = exp.extras.get(extra)
        if value is None:
            continue
        if value.ndim == 0:
            lines.append(f"{label}: {float(value):+.2e}")
        elif np.issubdtype(value.dtype, np.integer) or np.all(value == np.round(value)):
            lines.append(f"{label}: " + " ".join(str(int(v)) for v in value.ravel()))
        else:
            lines.append(f"{label}: " + " ".join(f"{float(v):.4g}" for v in value.ravel()))
    note = baseline_note(exp)
    return lines + ([note] if note else []) + layer_notes(exp)

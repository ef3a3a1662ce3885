"""Terminal: colours only on a terminal; plain text in pipes and files."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from textlens.render import plain_text, render_terminal

ROOT = Path(__file__).resolve().parents[2]


def test_plain_when_not_a_terminal(flat):
    out = io.StringIO()
    render_terminal(flat, file=out)
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "gripping(+0.8)" in text and "film(-0.4)" in text and "[CLS]" not in text


def test_colours_when_forced(flat):
    out = io.StringIO()
    render_terminal(flat, file=out, color=True)
    text = out.getvalue()
    assert "\x1b[" in text and "48;2;203;24;29" in text  # full red behind the top token


def test_one_line_per_layer(layered):
    lines = plain_text(layered).splitlines()
    assert len(lines) == 4 and lines[0].startswith("layer  1:")
    out = io.StringIO()
    render_terminal(layered, file=out, layers=[3])
    assert out.getvalue().startswith("layer  3:")


def test_renderers_never_import_torch():
    code = (
        "import sys, textlens.render, textlens.explanation;"
        "from tests.render.conftest import make_flat;"
        "textlens.render.render_html(make_flat()); textlens.render.to_csv(make_flat());"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "False"

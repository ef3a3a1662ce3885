"""The documentation cannot drift: its tutorials run, its figures match the results files, the
README stays short, and every method and command has its generated page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIALS = sorted([*(DOCS / "tutorials").glob("*.md"), DOCS / "getting-started.md"])
CODE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

sys.path.insert(0, str(DOCS))
import generate  # noqa: E402


def code_of(page: Path) -> str:
    return "\n".join(CODE.findall(page.read_text()))


@pytest.mark.parametrize("page", TUTORIALS, ids=lambda p: p.stem)
def test_every_tutorial_runs_as_written(page, tmp_path):
    code = code_of(page)
    assert code.strip(), f"{page.name} has no Python example"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, f"{page.name}:\n{done.stderr[-3000:]}"


def test_figures_in_readme_and_docs_are_the_results_files():
    assert generate.stale_figures() == []
    readme = (ROOT / "README.md").read_text()
    assert "<!-- figure: headline -->" in readme


def test_a_figure_block_that_disagrees_with_its_json_is_found():
    text = "<!-- figure: relevance-lm -->\n| stale | 1 |\n<!-- /figure -->\n"
    assert generate.render_figures(text) != text
    fresh = generate.render_figures(text)
    assert generate.render_figures(fresh) == fresh


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_reference_pages_cover_every_method_and_command(tmp_path, monkeypatch):
    import click

    from textlens.cli import main
    from textlens.methods import METHODS

    monkeypatch.setattr(generate, "REFERENCE", tmp_path)
    generate.method_pages()
    generate.cli_page()
    generate.target_page()
    assert {p.stem for p in (tmp_path / "methods").glob("*.md")} == {*METHODS, "index"}
    ig = (tmp_path / "methods" / "integrated-gradients.md").read_text()
    assert "| `n_steps` | whole number |" in ig and "at least 1" in ig and "Literal" not in ig
    cli = (tmp_path / "cli.md").read_text()
    context = click.Context(main, info_name="textlens")
    for name in main.list_commands(context):
        assert f"## textlens {name}" in cli
    assert "`--max-memory`" in cli


def test_the_site_builds_strict_and_loads_nothing_from_elsewhere(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        [sys.executable, str(DOCS / "generate.py"), "--reference"], check=True, env=env, cwd=ROOT
    )
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    pages = list((tmp_path / "site").rglob("*.html"))
    assert len(pages) > 20
    outside = re.compile(r"<(script|link|img)[^>]*(src|href)=\"(https?:)?//", re.I)
    assert not [p.name for p in pages if outside.search(p.read_text())]
    assert (tmp_path / "site" / "reference" / "methods" / "relevance.html").exists()

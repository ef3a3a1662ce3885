"""The notebook in docs/notebooks runs from top to bottom in a fresh kernel, and every result it
ends a cell with shows itself (HTML tables, inline figures) without touching the backend."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebooks" / "your-models.ipynb"


@pytest.fixture(scope="module")
def executed():
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}
    ).execute()
    return [c for c in notebook.cells if c.cell_type == "code"]


def _outputs(cell, kind):
    return [o for o in cell.outputs if o.get("output_type") == kind]


def test_the_notebook_runs_without_errors(executed):
    assert all(not _outputs(cell, "error") for cell in executed)


def test_each_object_a_user_holds_is_shown_as_html(executed):
    shown = {
        "integrated-gradients": "explain(review, classify",
        "SentenceTransformer": "explain_pair(",
        "bfloat16": "explain_generation(",
    }
    for what, call in shown.items():
        cell = next(c for c in executed if call in c.source)
        results = _outputs(cell, "execute_result")
        assert results and "text/html" in results[0]["data"], what


def test_the_backend_stays_and_the_heatmap_shows_inline(executed):
    first = _outputs(executed[0], "execute_result")[0]["data"]["text/plain"]
    assert "inline" in first.lower()
    heatmap = next(c for c in executed if "render.heatmap" in c.source)
    assert any("image/png" in o.get("data", {}) for o in heatmap.outputs)


def test_evaluations_and_comparisons_are_tables(executed):
    checked = next(c for c in executed if "evaluate([exp" in c.source)
    table = _outputs(checked, "execute_result")[0]["data"]["text/html"]
    assert "comprehensiveness" in table and table.count("<tr>") == 3  # head and two rows
    frame = next(c for c in executed if "report.to_frame()" in c.source)
    assert "gradient-x-input" in _outputs(frame, "execute_result")[0]["data"]["text/plain"]
    labels = next(c for c in executed if "explain_labels(" in c.source)
    printed = "".join(o["text"] for o in _outputs(labels, "stream"))
    assert "rotten" in printed and "fresh" in printed

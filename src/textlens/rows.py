"""A batch job's result rows: what the local engine (``jobs``) and the Ray engine (``cluster``)
both write, made in one place so that they agree row for row, error rows included."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textlens.data import InputRow
from textlens.errors import TextlensError
from textlens.memory import ResourceError

COLUMNS = ("row", "id", "text", "ok", "error", "label", "probability", "explanation")


@dataclass(frozen=True)
class JobSummary:
    total: int
    done_before: int
    explained: int
    failed: int
    output: Path
    ignored: int = 0
    """Journal lines skipped because their row is not in the input."""


def stored_text(text: str) -> str:
    """A row's text as every output format can hold it: each lone surrogate (an undecodable
    byte, read with ``surrogateescape``, or a JSON escape) becomes U+FFFD. Only error rows
    have any, so the JSON Lines, Parquet and Ray outputs hold the same rows."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def result_row(item: InputRow, result: Any = None, error: str | None = None) -> dict[str, Any]:
    """A row of the output: an Explanation (its label and probability), a Generation (its
    answer), or the error that kept the row from either."""
    row: dict[str, Any] = {
        "row": item.row, "id": stored_text(item.id), "text": stored_text(item.text),
        "ok": error is None, "error": error, "label": None, "probability": None,
        "explanation": None,
    }  # fmt: skip
    if result is None:
        return row
    target = getattr(result, "target", None)
    if target is not None:  # an Explanation
        row["label"], row["probability"] = target.label, target.probability
    else:  # a Generation: the answer is the row's label
        row["label"] = result.continuation
    row["explanation"] = result.to_dict()
    return row


def explain_rows(
    rows: Sequence[InputRow], adapter: Any, request: Any, batch_size: int
) -> list[dict[str, Any]]:
    """Result rows for ``rows`` in their order: broken rows as error rows, the others explained
    in length-sorted batches of ``batch_size``."""
    out = {r.row: result_row(r, error=r.error) for r in rows if r.error is not None}
    good = sorted((r for r in rows if r.error is None), key=lambda r: len(r.text))
    for start in range(0, len(good), batch_size):
        for result in explain_chunk(good[start : start + batch_size], adapter, request):
            out[result["row"]] = result
    return [out[r.row] for r in rows]


def explain_chunk(chunk: Sequence[InputRow], adapter: Any, request: Any) -> list[dict[str, Any]]:
    """Explain a batch; when it fails, one text at a time, so that only bad rows fail."""
    import warnings

    def run(items: Sequence[InputRow]) -> list[Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            documents = [r.documents for r in items]
            given = documents if any(d is not None for d in documents) else None
            return request.explain_texts(adapter, [r.text for r in items], len(items), given)

    if len(chunk) > 1:
        try:
            return [result_row(r, e) for r, e in zip(chunk, run(chunk), strict=True)]
        except ResourceError:
            raise  # the settings do not fit: no row can succeed
        except (TextlensError, ValueError, RuntimeError):
            pass  # find the bad rows below
    out = []
    for r in chunk:
        try:
            out.append(result_row(r, run([r])[0]))
        except ResourceError:
            raise
        except (TextlensError, ValueError, RuntimeError) as error:
            out.append(result_row(r, error=str(error).splitlines()[0]))
    return out


def write_parquet(output: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write result rows as a Parquet file (atomically): the explanation as a JSON string."""
    import io

    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:  # pragma: no cover - pyarrow is in the tables extra
        raise TextlensError(
            "parquet output needs pyarrow: pip install 'textlens[tables]'"
        ) from error
    from textlens.render.export import write_atomic

    columns = {
        "row": pa.array([r["row"] for r in rows], pa.int64()),
        "id": pa.array([r["id"] for r in rows], pa.string()),
        "text": pa.array([r["text"] for r in rows], pa.string()),
        "ok": pa.array([r["ok"] for r in rows], pa.bool_()),
        "error": pa.array([r["error"] for r in rows], pa.string()),
        "label": pa.array([r["label"] for r in rows], pa.string()),
        "probability": pa.array([r["probability"] for r in rows], pa.float64()),
        "explanation": pa.array(
            [None if r["explanation"] is None else json.dumps(r["explanation"]) for r in rows],
            pa.string(),
        ),
    }
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    write_atomic(output, buffer.getvalue())

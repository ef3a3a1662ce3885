"""Export many explanations at once: JSON documents, and one row per token (CSV / DataFrame)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from textlens.errors import OutputError

LIST_SCHEMA = "textlens.explanations/1"
COLUMNS = (
    "text_id",
    "token_index",
    "token",
    "word_index",
    "word",
    "start",
    "end",
    "special",
    "layer",
    "score",
    "method",
    "target",
    "model",
    "unit",
)


def _file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give: the old file's, or 0666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
        os.umask(mask)
        return 0o666 & ~mask


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write through a temporary file in the same folder and a rename: never half a file."""
    path = Path(path)
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {path.parent} does not exist: create it first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from error
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OutputError(f"cannot write {path}: {error.strerror or error}") from error
        raise
    return path


def _as_list(explanations: Any) -> list[Any]:
    """One explanation (anything with ``to_dict``) or many, as a list."""
    return [explanations] if hasattr(explanations, "to_dict") else list(explanations)


def to_json(explanations: Any, indent: int | None = 2) -> str:
    """Many explanations as one document: ``{"schema": "textlens.explanations/1", "items": [...]}``.

    Each item is the single-explanation schema ``textlens.explanation/1``.
    """
    items = [e.to_dict() for e in _as_list(explanations)]
    return json.dumps({"schema": LIST_SCHEMA, "items": items}, indent=indent, allow_nan=False)


def save_json(explanations: Any, path: str | Path) -> Path:
    return write_atomic(Path(path), to_json(explanations) + "\n")


def to_records(explanations: Any) -> list[dict[str, Any]]:
    """One dict per token (and per layer for layered explanations), in ``COLUMNS`` order.

    ``word_index`` / ``word`` name the word a sub-word belongs to (-1 and "" for special tokens
    and for larger units); ``layer`` is None for explanations without layers; ``unit`` is
    ``subword``, ``word``, ``sentence``, ``paragraph`` or ``document`` (the explanation's level).
    """
    rows: list[dict[str, Any]] = []
    for text_id, exp in enumerate(_as_list(explanations)):
        word_of = np.full(len(exp), -1)
        words: list[str] = []
        groups = exp.word_groups() if exp.level in ("subword", "word") else []
        for w, group in enumerate(groups):
            word_of[group] = w
            words.append(exp.text[exp.offsets[group[0]][0] : exp.offsets[group[-1]][1]])
        if exp.layered:
            layer_rows = list(zip(exp.layers or range(len(exp.scores)), exp.scores, strict=True))
        else:
            layer_rows = [(None, exp.scores)]
        label = exp.target.label if exp.target.label is not None else exp.target.kind
        for layer, scores in layer_rows:
            for i, token in enumerate(exp.tokens):
                w = int(word_of[i])
                rows.append(
                    {
                        "text_id": text_id,
                        "token_index": i,
                        "token": token,
                        "word_index": w,
                        "word": words[w] if w >= 0 else "",
                        "start": exp.offsets[i][0],
                        "end": exp.offsets[i][1],
                        "special": exp.special[i],
                        "layer": None if layer is None else int(layer),
                        "score": float(scores[i]),
                        "method": exp.method,
                        "target": label,
                        "model": exp.model,
                        "unit": exp.level,
                    }
                )
    return rows


def to_dataframe(explanations: Any) -> Any:
    """``to_records`` as a pandas DataFrame (needs pandas: ``pip install textlens[tables]``)."""
    try:
        import pandas as pd
    except ImportError as error:  # pragma: no cover - pandas is in the tables extra
        raise ImportError("to_dataframe needs pandas: pip install 'textlens[tables]'") from error
    frame = pd.DataFrame(to_records(explanations), columns=list(COLUMNS))
    return frame.astype({"layer": "Int64"})


def to_csv(explanations: Any) -> str:
    """``to_records`` as CSV text (standard library only)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in to_records(explanations):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def save_csv(explanations: Any, path: str | Path) -> Path:
    return write_atomic(Path(path), to_csv(explanations))

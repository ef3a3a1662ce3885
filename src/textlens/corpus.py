"""Corpora: texts that stand for what a user explains (a method's reference statistics).

A corpus is named by a string, so that an explanation can record it among its settings: a text
file, ``"demo"`` (the packaged movie reviews), or a key from ``remember`` for texts handed over
in memory (the texts of a run, the input file of a batch job).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from textlens.errors import TextlensError

MIN_CORPUS = 10
"""Fewest corpus texts accepted."""
ENOUGH_TEXTS = 100
"""Fewest texts being explained that serve as the corpus without being asked."""
PACKAGED = "demo"
"""The ``corpus`` value naming the packaged corpus (Rotten Tomatoes training snippets)."""
MAX_TEXTS = 100_000
"""Most texts of a remembered corpus handed to another process (more than any corpus uses)."""
_REMEMBERED: dict[str, tuple[str, ...]] = {}
"""Corpora handed over in memory (``remember``), by their key."""


class CorpusNotice(UserWarning):
    """The regularisation fell back to the packaged corpus."""


def remember(texts: Sequence[str]) -> str:
    """Keep ``texts`` as a corpus for this process; returns the ``corpus`` value naming them.

    The key (``texts:`` and a hash of the texts) is what an explanation records, so two runs on
    the same texts record the same setting.
    """
    kept = tuple(texts)
    key = "texts:" + hashlib.sha256(json.dumps(list(kept)).encode()).hexdigest()[:12]
    _REMEMBERED[key] = kept
    return key


def remembered(values: Iterable[Any]) -> dict[str, list[str]]:
    """The texts (up to the largest corpus size) behind every ``remember`` key among
    ``values``, for another process to ``restore``."""
    return {v: list(_REMEMBERED[v][:MAX_TEXTS]) for v in values if v in _REMEMBERED}


def restore(key: str, texts: Sequence[str]) -> None:
    """Keep texts remembered by another process under their key."""
    _REMEMBERED[key] = tuple(texts)


def corpus_texts(corpus: str | None, corpus_size: int, notice: bool = True) -> list[str]:
    """The first ``corpus_size`` texts of ``corpus``.

    ``corpus`` is a text file (``.txt`` a line each, ``.jsonl`` / ``.csv`` with a ``text``
    field), a key from ``remember``, ``"demo"`` (the packaged movie reviews) or None (the
    packaged ones, with a ``CorpusNotice`` that says how to give the user's own, unless
    ``notice`` is False).
    """
    if corpus is None or corpus == PACKAGED:
        from textlens.data import rotten_tomatoes

        if corpus is None and notice:
            warnings.warn(
                "the information method's regularisation (each unit's spread) comes from the "
                "packaged movie-review corpus; give texts like yours with --corpus FILE "
                "(corpus=... in Python), or corpus='demo' to choose it and silence this",
                CorpusNotice,
                stacklevel=4,
            )
        return list(rotten_tomatoes("train").texts[:corpus_size])
    if corpus.startswith("texts:"):
        if corpus not in _REMEMBERED:
            raise TextlensError(
                f"corpus {corpus!r} was given in another process; give the corpus as a file"
            )
        return list(_REMEMBERED[corpus][:corpus_size])
    from pathlib import Path

    from textlens.data import read_texts

    if not Path(corpus).is_file():
        raise TextlensError(
            f"the corpus file {corpus} does not exist: give a .txt, .jsonl or .csv file of texts "
            f"like yours, or {PACKAGED!r} for the packaged movie reviews"
        )
    rows = read_texts(corpus)
    texts = [r.text for r in rows if r.error is None and r.text]
    if len(texts) < MIN_CORPUS:
        raise TextlensError(
            f"the corpus {corpus} has {len(texts)} usable texts; the regularisation needs at "
            f"least {MIN_CORPUS}"
        )
    return texts[:corpus_size]


def run_corpus(texts: Sequence[Any], model_name: str = "") -> str | None:
    """The corpus the texts of a run make (their ``remember`` key), when there are enough.

    None for the demo classifier: the packaged corpus it was trained on is its corpus.
    """
    from textlens.zoo import DEMO_NAME

    if model_name in (DEMO_NAME, PACKAGED):
        return None
    usable = [t for t in texts if t]
    return remember(usable) if len(usable) >= ENOUGH_TEXTS else None

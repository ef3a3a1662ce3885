"""Progress of long runs: what a run expects to cost, and each step it finishes.

The library only says things; a front end decides whether and where they are shown. Inside
``reporting(fn)``, ``say(message, seconds=...)`` calls ``fn(message, seconds)``; outside, it does
nothing. ``seconds`` is set on a cost estimate (the expected seconds of the run) and None on
progress lines.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

Reporter = Callable[[str, "float | None"], None]
_REPORTER: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "textlens_progress", default=None
)


@contextlib.contextmanager
def reporting(fn: Reporter) -> Iterator[None]:
    """Send what runs inside this block say to ``fn(message, seconds)``."""
    token = _REPORTER.set(fn)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def say(message: str, seconds: float | None = None) -> None:
    """Tell the current reporter, if any."""
    fn = _REPORTER.get()
    if fn is not None:
        fn(message, seconds)


def listening() -> bool:
    """Whether anyone listens (to skip work that only feeds ``say``)."""
    return _REPORTER.get() is not None


def duration(seconds: float) -> str:
    """``"8 s"``, ``"3.5 min"``, ``"1.2 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

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


def bar(done: int, total: int, what: str, began: float | None = None) -> None:
    """Say how far a run is: ``[#####.....] 3/8 what, 40 s, about 1.2 min left`` (times when
    ``began``, a ``time.perf_counter()`` reading, is given)."""
    if not listening() or total <= 0:
        return
    import time

    width = 20
    filled = round(width * done / total)
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"
    if began is not None and done > 0:
        spent = time.perf_counter() - began
        line += f", {duration(spent)}"
        if done < total:
            line += f", about {duration(spent / done * (total - done))} left"
    say(line)

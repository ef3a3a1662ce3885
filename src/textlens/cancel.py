"""Cancelling work in progress: a flag the model's forward passes check between steps.

A front end (the server) runs a job inside ``cancellable(event)``; setting the event makes the
job's next forward pass raise ``Cancelled``, so a request nobody waits for any more frees the
worker within one step instead of running to its end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from textlens.errors import TextlensError

_local = threading.local()


class Cancelled(TextlensError):
    """The work was cancelled by the front end that asked for it."""


@contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    """Work in this thread inside the block stops at its next check once ``event`` is set."""
    before = getattr(_local, "event", None)
    _local.event = event
    try:
        yield
    finally:
        _local.event = before


def check() -> None:
    """Raise ``Cancelled`` when the current thread's work has been cancelled."""
    event = getattr(_local, "event", None)
    if event is not None and event.is_set():
        raise Cancelled("the work was cancelled")

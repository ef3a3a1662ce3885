"""User-facing errors: each carries one line that says what went wrong and what to do."""

from __future__ import annotations


class TextlensError(ValueError):
    """A mistake in how textlens was called; the message is one line meant for the user."""


class MissingAssetError(TextlensError, FileNotFoundError):
    """A demo model or data file is not installed."""


class OutputError(TextlensError, OSError):
    """An output file could not be written (a read-only folder, a full disk...)."""


def one_line(message: str) -> str:
    """Collapse whitespace so that an error prints as exactly one line."""
    return " ".join(str(message).split())

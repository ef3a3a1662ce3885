"""Input text: the rule every front end applies before tokenizing."""

from __future__ import annotations

from textlens.errors import TextlensError


def check_unicode(text: str, what: str = "the text") -> None:
    """Refuse a text that is not valid Unicode (a lone surrogate, e.g. from undecodable bytes).

    The rule: text must be valid Unicode, and nothing is replaced silently. Bytes in another
    encoding should be decoded with that encoding (``explain-file --encoding``).
    """
    for i, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            raise TextlensError(
                f"{what} is not valid Unicode: character {i} is a lone surrogate "
                f"(U+{ord(char):04X}), often from bytes in another encoding; decode the text "
                "with its real encoding (or with errors='replace')"
            )

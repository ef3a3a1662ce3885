"""Which methods give the optional outputs (``parts``: scores split into parts; ``units``: scores
per hidden unit), for messages that name them. The method registry fills it as methods register;
renderers read it without importing the methods (the registry is below them, never above).
"""

from __future__ import annotations

PROVIDERS: dict[str, dict[str, str]] = {}
"""``{output: {method: the settings that turn it on ("" when always)}}``."""


def provided_by(output: str) -> str:
    """How to get an optional output: "method='X' with Y" for each method that gives it."""
    found = PROVIDERS.get(output, {})
    text = " or ".join(
        f"method={name!r}" + (f" with {how}" if how else "") for name, how in sorted(found.items())
    )
    return text or "a method that gives it (`textlens methods --json`: provides)"

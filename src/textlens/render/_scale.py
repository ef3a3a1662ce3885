"""Colour scales shared by the HTML, terminal and heatmap renderers (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Endpoints: red = evidence for the target, blue = against it; orange for unsigned importance.
POSITIVE = (203, 24, 29)
NEGATIVE = (33, 102, 172)
SEQUENTIAL = (217, 72, 1)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class Scale:
    """Maps a score to a colour.

    Signed: diverging around 0 over ``[-vmax, vmax]``. Unsigned: sequential over
    ``[low, vmax]``, from the least to the most important token shown (the information
    method's ``-log sigma`` has no natural zero, and saliency's smallest value is near 0).
    """

    signed: bool
    vmax: float
    low: float = 0.0

    @property
    def vmin(self) -> float:
        return -self.vmax if self.signed else self.low

    def intensity(self, value: float) -> float:
        """Position in [-1, 1] (signed) or [0, 1] (unsigned); NaN maps to 0."""
        if not np.isfinite(value):
            return 0.0
        if self.signed:
            return max(-1.0, min(1.0, float(value) / self.vmax)) if self.vmax > 0 else 0.0
        span = self.vmax - self.low
        return max(0.0, min(1.0, (float(value) - self.low) / span)) if span > 0 else 0.0

    def rgb(self, value: float) -> tuple[int, int, int]:
        t = self.intensity(value)
        end = SEQUENTIAL if not self.signed else (POSITIVE if t >= 0 else NEGATIVE)
        t = abs(t)
        return tuple(round(w + (e - w) * t) for w, e in zip(WHITE, end, strict=True))  # type: ignore[return-value]

    def hex(self, value: float) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb(value))

    def ink(self, value: float) -> str:
        """Text colour that stays readable on ``rgb(value)``."""
        return "#ffffff" if abs(self.intensity(value)) > 0.6 else "#111111"

    def cmap(self) -> Any:
        """The same scale as a matplotlib colormap (imported lazily)."""
        from matplotlib.colors import LinearSegmentedColormap

        def unit(c: tuple[int, int, int]) -> tuple[float, float, float]:
            return (c[0] / 255, c[1] / 255, c[2] / 255)

        colours = (
            [unit(NEGATIVE), unit(WHITE), unit(POSITIVE)]
            if self.signed
            else [
                unit(WHITE),
                unit(SEQUENTIAL),
            ]
        )
        return LinearSegmentedColormap.from_list("textlens", colours)


def visible_values(exp: Any, special: bool = False) -> np.ndarray:
    """The finite scores of the tokens shown (special tokens only when ``special``)."""
    scores = np.asarray(exp.scores, dtype=float)
    keep = np.ones(len(exp.tokens), bool) if special else ~np.asarray(exp.special, dtype=bool)
    values = scores[..., keep]
    return values[np.isfinite(values)]


def shared_scale(
    explanations: Sequence[Any], signed: bool | None = None, special: bool = False
) -> Scale:
    """One scale for several explanations, so that colours compare across rows and layers.

    The range is the largest magnitude over every non-special token; special tokens ([CLS],
    [SEP]) often carry outsized scores and would wash out the words, so they count only when
    ``special`` (when they are drawn).
    """
    if signed is None:
        signed = any(e.signed for e in explanations)
    values = [v for v in (visible_values(e, special) for e in explanations) if v.size]
    if not values:
        return Scale(signed=signed, vmax=1.0)
    if signed:
        vmax = float(max(np.abs(v).max() for v in values))
        return Scale(signed=True, vmax=vmax if vmax > 0 else 1.0)
    high = float(max(v.max() for v in values))
    low = float(min(v.min() for v in values))
    return Scale(signed=False, vmax=high if high > low else low + 1.0, low=low)


def fmt(value: float) -> str:
    """A score as text: fixed sign, four significant digits, 'n/a' for NaN."""
    if not np.isfinite(value):
        return "n/a"
    return f"{value:+.4g}"

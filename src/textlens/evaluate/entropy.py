"""How spread out attributions are: the entropy of their histogram (for the layer views)."""

from __future__ import annotations

import numpy as np


def attribution_entropy(values: np.ndarray, bins: int = 20) -> float:
    """Entropy (nats) of the histogram of ``values`` over ``bins`` equal-width bins."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size == 0 or np.ptp(values) == 0:
        return 0.0
    counts, _ = np.histogram(values, bins=bins)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())

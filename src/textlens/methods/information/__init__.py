"""The information-based explanation (Guan et al., ICML 2019), in one package.

- ``method``: the ``information-loss`` method for HF models (every layer at once, batched).
- ``function``: ``information_loss(x, phi)``, the function form for any embeddings and Phi.
- ``problem``: the loss, its settings and start; ``solve.optimize`` runs a solver.
- ``fixed_point`` and ``adam``: the two solvers. ``noise``: the seeded noise streams.
- ``regularization``: the per-unit spread of Phi over a corpus, cached.

The theory: ``docs/information.md``.
"""

from textlens.methods.information.function import information_loss
from textlens.methods.information.method import InformationLoss, length_buckets
from textlens.methods.information.problem import (
    FLOOR_ABSOLUTE,
    FLOOR_RELATIVE,
    LOG_2PIE,
    Group,
    Result,
    Settings,
    regularization_scale,
)
from textlens.methods.information.regularization import MIN_CORPUS, regularization_from_texts
from textlens.methods.information.solve import optimize

__all__ = [
    "FLOOR_ABSOLUTE",
    "FLOOR_RELATIVE",
    "LOG_2PIE",
    "MIN_CORPUS",
    "Group",
    "InformationLoss",
    "Result",
    "Settings",
    "information_loss",
    "length_buckets",
    "optimize",
    "regularization_from_texts",
    "regularization_scale",
]

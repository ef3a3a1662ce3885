"""The information-based explanation's function form, kept under its former name.

Everything lives in ``textlens.methods.information`` now; ``from textlens.information import
information_loss`` keeps working.
"""

from textlens.methods.information import (  # noqa: F401  (re-exported)
    FLOOR_ABSOLUTE,
    FLOOR_RELATIVE,
    LOG_2PIE,
    Group,
    Result,
    Settings,
    information_loss,
    regularization_scale,
)
from textlens.methods.information.problem import (  # noqa: F401  (re-exported)
    LOG_SIGMA_MAX,
    LOG_SIGMA_MIN,
    MIN_ITERATIONS,
)
from textlens.methods.information.solve import optimize  # noqa: F401  (re-exported)

"""Short notes a reader needs next to an explanation: what its baseline predicts, and the like.

Each function takes an Explanation and returns one line of plain text, or None when there is
nothing to say; the terminal, the HTML page and the figures print the same words.
"""

from __future__ import annotations

from typing import Any


def baseline_note(exp: Any) -> str | None:
    """What the baseline of a path method predicts by itself, from the explanation's extras."""
    extras = exp.extras
    if "baseline_score" not in extras:
        return None
    token = exp.params.get("baseline", "")
    head = f"baseline {token!r}" if token else "baseline"
    if "baseline_probability" not in extras:
        return f"{head}: target score {float(extras['baseline_score']):.3f}"
    names = list(exp.target.probabilities or {})
    k = round(float(extras["baseline_predicted"]))
    predicted = names[k] if k < len(names) else f"outcome {k}"
    target = exp.target.label if exp.target.label is not None else "the target"
    line = (
        f"{head} predicts {predicted} (p={float(extras['baseline_predicted_probability']):.3f}); "
        f"p({target})={float(extras['baseline_probability']):.3f} at the baseline, "
        f"uniform share {float(extras['baseline_uniform']):.3f}"
    )
    if float(extras.get("baseline_favours", 0.0)) > 0:
        line += ": it already favours the target, so the scores say little; try another baseline"
    return line

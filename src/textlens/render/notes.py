"""Short notes a reader needs next to an explanation: what its baseline predicts, and the like.

Each function takes an Explanation and returns one line of plain text, or None when there is
nothing to say; the terminal, the HTML page and the figures print the same words.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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


ZERO = 1e-9
"""A layer's row counts as zero when every shown score is below this share of the largest."""
SPREAD = 0.05
"""Layer totals that should agree are said to differ beyond this share of their mean."""


def layer_notes(exp: Any, show_special: bool = False) -> list[str]:
    """Why a layered picture looks as it does: rows of zeros, and layer totals that differ.

    Uses the explanation's ``layer_totals`` (what every layer's scores add up to, if its method
    promises a total).
    """
    if not exp.layered:
        return []
    scores = np.asarray(exp.scores, dtype=float)
    shown = np.ones(len(exp), bool) if show_special else ~np.asarray(exp.special, bool)
    names = list(exp.layers or range(scores.shape[0]))
    notes = []
    largest = float(np.abs(scores).max()) if scores.size else 0.0
    zero = [n for n, row in zip(names, scores, strict=True) if largest > 0 and
            float(np.abs(row[shown]).max(initial=0.0)) <= ZERO * largest]  # fmt: skip
    if zero:
        which = ", ".join(map(str, zero))
        notes.append(
            f"layer {which}: zero for every word: the target does not depend on the words' states "
            "there (after a classifier's last layer only the first token, [CLS], feeds the head)"
        )
    promise = exp.layer_totals
    if promise and scores.shape[0] > 1:
        totals = scores.sum(axis=1)
        middle = max(float(np.abs(totals).mean()), 1e-12)
        if exp.target.score is not None and "baseline_score" in exp.extras:
            promise += f" = {exp.target.score - float(exp.extras['baseline_score']):.3g}"
        if float(totals.max() - totals.min()) > SPREAD * middle:
            notes.append(
                f"layer totals run from {totals.min():.3g} to {totals.max():.3g} (special tokens "
                f"included), though each should be {promise}: the gap is the path's "
                "discretisation; more steps bring them together"
            )
    return notes


def saturated_note(exp: Any, mark: str = "hatched") -> str | None:
    """Which tokens are saturated (the information method: sigma at its bound), if any."""
    flags = exp.saturated
    if flags is None or not flags.any():
        return None
    shown = ~np.asarray(exp.special, bool)
    hit = flags & shown
    count = int(hit.any(axis=0).sum() if hit.ndim == 2 else hit.sum())
    bound = exp.params.get("max_sigma")
    size = f"{bound:g} x its own size" if isinstance(bound, int | float) else "its bound"
    unit = exp.level if exp.level != "subword" else "token"
    return (
        f"{mark}: {count} {unit}(s) saturated in at least one row: sigma reached {size}, so "
        "none of their information reaches Phi (scored at that bound)"
    )


_REDUCTION = {
    "sum": "the sum of their sub-word scores",
    "mean": "the mean of their sub-word scores",
    "max": "the largest of their sub-word scores",
    "l2": "the root of the sum of their squared sub-word scores",
}


def unit_note(exp: Any) -> str:
    """What one shown score covers: a sub-word token, or a word / sentence and how its pieces'
    scores were combined."""
    if exp.level == "subword":
        return "tokens: one score per sub-word"
    reduce = exp.params.get("word_reduce", exp.unit_reduce)
    return f"{exp.level}s: {_REDUCTION.get(reduce, reduce)}"

"""Normalised AOPC: comprehensiveness rescaled between the worst and best removal orders.

AOPC (our comprehensiveness: the mean drop of the followed value when the top k units are
removed, over the ERASER bins k) has a range that depends on the model and the input: a short
text whose prediction barely moves cannot reach a high AOPC under any explanation. Edin et al.
(ACL 2025, "Normalized AOPC: Fixing Misleading Faithfulness Metrics for Feature Attribution
Explainability") rescale it per input between its lower and upper bound over all orderings of
the units::

    NAOPC = (AOPC - AOPC_min) / (AOPC_max - AOPC_min)

so that 1 is the best ordering any explanation could give and 0 the worst, and values compare
across models and lengths.

The bounds only depend on the model, the input and the removal, not on the method, so they are
found once per input and shared. Only the sets removed at the bin sizes matter, and they are
nested, so the best ordering is a chain of sets: with at most ``exact_up_to`` units the bounds
are exact (every subset of a bin size is evaluated and a dynamic programme over chains picks the
best and worst); longer inputs use a beam search: ``beam`` chains are kept at each size, each
extended by the ``pool`` units not in it whose leave-one-out drop is largest (for the upper
bound; smallest for the lower one), and ranked by the objective so far plus the current drop.
The beam gives an upper bound no higher and a lower bound no lower than the exact ones, so NAOPC
is clipped to [0, 1]. Cost per long input: its leave-one-out passes plus about
``2 x beam x pool x units / 2`` forward passes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textlens.evaluate.faithfulness import (
    ERASER_BINS,
    _Prober,
    full_values,
    removal_plans,
)

EXACT_UP_TO = 10
BEAM = 3
POOL = 6


@dataclass(frozen=True)
class AOPCBounds:
    """The lowest and highest AOPC any ordering of one input's units reaches."""

    lower: float
    upper: float
    exact: bool

    def normalise(self, aopc: float) -> float:
        """NAOPC of an AOPC on this input, clipped to [0, 1] (NaN when the bounds meet)."""
        span = self.upper - self.lower
        if not math.isfinite(aopc) or span <= 1e-12:
            return math.nan
        return float(min(1.0, max(0.0, (aopc - self.lower) / span)))


def _weights(bins: Sequence[float], m: int) -> dict[int, float]:
    """How much the drop at each removed-set size counts in AOPC (a mean over the bins)."""
    out: dict[int, float] = {}
    for q in bins:
        k = max(1, math.ceil(q * m))
        out[k] = out.get(k, 0.0) + 1.0 / len(bins)
    return out


def aopc_bounds(
    model: Any,
    texts: Sequence[str],
    targets: Sequence[int] | None = None,
    *,
    unit: str = "token",
    removal: str = "delete",
    bins: Sequence[float] = ERASER_BINS,
    exact_up_to: int = EXACT_UP_TO,
    beam: int = BEAM,
    pool: int = POOL,
    batch_size: int = 64,
    follow: Any = None,
) -> list[AOPCBounds]:
    """AOPC bounds of each text (see the module docstring); arguments as ``evaluate_scores``."""
    from textlens.adapters.loading import load_model
    from textlens.targets import default_follow

    adapter = load_model(model)
    follow = follow or default_follow(adapter)
    batch, plans = removal_plans(adapter, texts, unit, removal)  # type: ignore[arg-type]
    full, outcomes = full_values(adapter, batch, plans, follow, targets, batch_size)
    token_types = batch.token_type_ids is not None
    weights = [_weights(bins, len(p.units)) for p in plans]  # per text: size -> weight

    def drops(sets: list[tuple[int, frozenset[int]]]) -> np.ndarray:
        prober = _Prober(adapter, batch_size, token_types, follow)
        for b, chosen in sets:
            prober.add(*plans[b].variant(sorted(chosen)), b)
        if not sets:
            return np.zeros(0)
        values = prober.run(outcomes)
        return np.array([full[b] for b, _ in sets]) - values

    out: list[AOPCBounds | None] = [None] * len(plans)
    # exact: every subset of a counted size, then the best and worst chain through them
    small = [b for b, p in enumerate(plans) if len(p.units) <= exact_up_to]
    subsets = []
    for b in small:
        m = len(plans[b].units)
        for k in sorted(weights[b]):
            subsets += [(b, frozenset(c)) for c in itertools.combinations(range(m), k)]
    value = dict(zip(subsets, drops(subsets), strict=True))
    for b in small:
        m = len(plans[b].units)
        sizes = sorted(weights[b])
        # set -> (max, min) of the weighted sum along chains
        best: dict[frozenset[int], tuple[float, float]] = {frozenset(): (0.0, 0.0)}
        for k in sizes:
            nxt = {}
            for c in itertools.combinations(range(m), k):
                s = frozenset(c)
                below = [v for t, v in best.items() if t <= s]
                gain = weights[b][k] * value[(b, s)]
                nxt[s] = (max(v[0] for v in below) + gain, min(v[1] for v in below) + gain)
            best = nxt
        out[b] = AOPCBounds(
            lower=min(v[1] for v in best.values()),
            upper=max(v[0] for v in best.values()),
            exact=True,
        )
    # beam search for the rest, all texts a step at a time (one batch of variants per step)
    large = [b for b in range(len(plans)) if out[b] is None]
    singles = [(b, frozenset({i})) for b in large for i in range(len(plans[b].units))]
    loo: dict[int, np.ndarray] = {b: np.zeros(len(plans[b].units)) for b in large}
    for (b, s), v in zip(singles, drops(singles), strict=True):
        loo[b][next(iter(s))] = v
    for sign in (1.0, -1.0):
        ranking = {b: np.argsort(-sign * loo[b], kind="stable").tolist() for b in large}
        beams: dict[Any, list[tuple[float, frozenset[int]]]] = {
            b: [(0.0, frozenset())] for b in large
        }
        steps = {b: max(weights[b]) for b in large}
        for step in range(1, max(steps.values(), default=0) + 1):
            live = [b for b in large if step <= steps[b]]
            cands = []
            for b in live:
                seen = set()
                for score, s in beams[b]:
                    for i in [i for i in ranking[b] if i not in s][:pool]:
                        t = s | {i}
                        if t not in seen:
                            seen.add(t)
                            cands.append((b, t, score))
            values = drops([(b, t) for b, t, _ in cands])
            ranked: dict[int, list[tuple[float, float, frozenset[int]]]] = {b: [] for b in live}
            for (b, t, score), v in zip(cands, values, strict=True):
                w = weights[b].get(step, 0.0)
                total = score + sign * w * v
                ranked[b].append((total + sign * v * (w == 0), total, t))
            for b in live:
                ranked[b].sort(key=lambda r: -r[0])
                beams[b] = [(total, t) for _, total, t in ranked[b][:beam]]
        for b in large:
            reached = sign * max(score for score, _ in beams[b])
            lower, upper = (0.0, reached) if sign > 0 else (reached, 0.0)
            old = out[b]
            if old is not None:
                lower, upper = (old.lower, upper) if sign > 0 else (lower, old.upper)
            out[b] = AOPCBounds(lower=lower, upper=upper, exact=False)
    return [o for o in out if o is not None]

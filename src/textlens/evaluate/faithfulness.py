"""Faithfulness metrics: does removing the tokens an explanation ranks highest change the output?

All metrics follow the probability of the explained class. Tokens are removed either by
``"delete"`` (dropped from the sequence, special tokens kept; ERASER's definition, and the
default: no out-of-distribution [MASK] tokens for a fine-tuned classifier) or by ``"mask"``
(replaced by the mask token, pad where there is none, keeping positions).

- comprehensiveness: ``p(x) - p(x without the top-k tokens)``, averaged over the ERASER bins
  k = 1, 5, 10, 20, 50% of the tokens (AOPC); higher is better.
- sufficiency: ``p(x) - p(only the top-k tokens)``, averaged over the same bins; lower is better.
- deletion / insertion curves: the probability as the top tokens are removed from the text, or
  inserted into an empty one, at 0, 10, ... 100% of the tokens; their areas (AUC, trapezoid
  over the fraction) say how fast it falls (lower is better) or rises (higher is better).
- leave-one-out Kendall tau: rank agreement (tau-b) between the scores and each token's
  leave-one-out drop ``p(x) - p(x without token i)``.
- completeness: for integrated gradients, ``|sum of scores - (F(x) - F(baseline))|`` (the
  recorded convergence delta).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from textlens.batch import TokenBatch
from textlens.errors import TextlensError

ERASER_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)
CURVE_POINTS = tuple(i / 10 for i in range(11))
Removal = Literal["delete", "mask"]


@dataclass(frozen=True)
class Faithfulness:
    """Metrics for one explanation (see the module docstring)."""

    comprehensiveness: float
    sufficiency: float
    comprehensiveness_bins: tuple[float, ...]
    sufficiency_bins: tuple[float, ...]
    deletion_curve: tuple[float, ...]
    insertion_curve: tuple[float, ...]
    deletion_auc: float
    insertion_auc: float
    loo_kendall_tau: float
    completeness: float
    probability: float
    extras: dict[str, Any] = field(default_factory=dict)
    naopc: float = math.nan
    """Comprehensiveness normalised between the input's bounds (``textlens.evaluate.naopc``),
    when they were found."""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extras"}


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (ties counted as in scipy); NaN when either side is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2:
        return math.nan
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(a.size, k=1)
    da, db = da[upper], db[upper]
    concordant = float((da * db).sum())
    denom = math.sqrt(float((da != 0).sum()) * float((db != 0).sum()))
    return concordant / denom if denom > 0 else math.nan


def _auc(curve: Sequence[float]) -> float:
    y = np.asarray(curve, float)
    x = np.asarray(CURVE_POINTS[: len(y)], float)
    return float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum())


class _Prober:
    """Collects token-id variants of texts, runs them in batches, returns the followed value."""

    def __init__(self, adapter: Any, batch_size: int, token_types: bool, follow: Any) -> None:
        self.adapter = adapter
        self.batch_size = batch_size
        self.token_types = token_types
        self.follow = follow
        self.variants: list[tuple[list[int], list[int], int]] = []

    def add(self, ids: list[int], types: list[int], owner: int = 0) -> int:
        self.variants.append((ids, types, owner))
        return len(self.variants) - 1

    def _batch(self, index: Sequence[int]) -> TokenBatch:
        adapter = self.adapter
        width = max(1, max(len(self.variants[i][0]) for i in index))
        ids = torch.full((len(index), width), adapter.pad_token_id, dtype=torch.long)
        types = torch.zeros((len(index), width), dtype=torch.long)
        mask = torch.zeros((len(index), width), dtype=torch.long)
        for row, i in enumerate(index):
            v_ids, v_types, _ = self.variants[i]
            ids[row, : len(v_ids)] = torch.tensor(v_ids, dtype=torch.long)
            types[row, : len(v_types)] = torch.tensor(v_types, dtype=torch.long)
            mask[row, : len(v_ids)] = 1
        return TokenBatch(
            texts=("",) * len(index),
            input_ids=ids.to(adapter.device),
            attention_mask=mask.to(adapter.device),
            special_mask=torch.zeros_like(ids, dtype=torch.bool).to(adapter.device),
            token_type_ids=types.to(adapter.device) if self.token_types else None,
            tokens=((),) * len(index),
            offsets=((),) * len(index),
            n_truncated=(0,) * len(index),
        )

    @torch.no_grad()
    def run(self, outcomes: torch.Tensor | None = None, start: int = 0) -> np.ndarray:
        """The followed value of variants ``start:``; with no ``outcomes``, each variant's own
        outcome (what the follower picks on it) instead of its text's."""
        adapter, follow = self.adapter, self.follow
        out = np.zeros(len(self.variants) - start)
        picked = np.zeros(len(self.variants) - start, dtype=np.int64)
        todo = range(start, len(self.variants))
        order = sorted(todo, key=lambda i: len(self.variants[i][0]))
        hidden = bool(getattr(follow, "needs_hidden_states", False))
        for at in range(0, len(order), self.batch_size):
            index = order[at : at + self.batch_size]
            batch = self._batch(index)
            outputs = adapter.forward(adapter.embed(batch), batch, hidden_states=hidden)
            owners = torch.tensor([self.variants[i][2] for i in index])
            if outcomes is None:
                mine = follow.outcome(adapter, batch, outputs, owners.to(batch.input_ids.device))
            else:
                mine = outcomes[owners].to(batch.input_ids.device)
            values = follow.value(adapter, batch, outputs, mine)
            rows = np.asarray(index) - start
            out[rows] = values.float().cpu().numpy()
            picked[rows] = mine.cpu().numpy()
        self.picked = picked
        return out


def _row_scores(exp: Any, layer: int | None) -> np.ndarray:
    if not exp.layered:
        return np.asarray(exp.scores, float)
    return np.asarray(exp.row(layer), float)


@dataclass
class Plan:
    """One text prepared for removals: its token ids and types, its units and their ranks."""

    ids: list[int]
    types: list[int]
    units: list[list[int]]
    removal: str
    mask_id: int

    def variant(self, removed_units: Sequence[int]) -> tuple[list[int], list[int]]:
        """The text with the given units removed (deleted or masked)."""
        removed = {i for u in removed_units for i in self.units[u]}
        n = len(self.ids)
        if self.removal == "mask":
            return [self.mask_id if i in removed else self.ids[i] for i in range(n)], self.types
        keep = [i for i in range(n) if i not in removed]
        return [self.ids[i] for i in keep], [self.types[i] for i in keep]


def removal_plans(
    adapter: Any, texts: Sequence[str], unit: str = "token", removal: Removal = "delete"
) -> tuple[Any, list[Plan]]:
    """The model's tokenization of ``texts`` and, per text, its removable units: non-special
    tokens (``"token"``), or whole words or sentences with all their pieces, found by offsets."""
    from textlens.explanation import unit_groups

    if removal not in ("delete", "mask"):
        raise TextlensError(f"unknown removal {removal!r}; use 'delete' or 'mask'")
    if unit not in ("token", "word", "sentence"):
        raise TextlensError(f"unknown unit {unit!r}; use token, word or sentence")
    batch = adapter.encode(list(texts), warn=False)
    mask_id = adapter.special_token_id("mask")
    plans = []
    for b in range(len(texts)):
        n = int(batch.lengths[b])
        ids = batch.input_ids[b, :n].tolist()
        types = (
            batch.token_type_ids[b, :n].tolist() if batch.token_type_ids is not None else [0] * n
        )
        special = batch.special_mask[b, :n].tolist()
        if unit == "token":
            units = [[i] for i in range(n) if not special[i]]
        else:
            units = unit_groups(batch.texts[b], batch.offsets[b], special, unit)  # type: ignore[arg-type]
        if not units:
            raise TextlensError(f"text {b} has no {unit}s to remove")
        plans.append(Plan(ids, types, units, removal, mask_id))
    return batch, plans


def full_values(
    adapter: Any,
    batch: Any,
    plans: Sequence[Plan],
    follow: Any,
    targets: Sequence[int] | None,
    batch_size: int,
) -> tuple[np.ndarray, Any]:
    """The followed value of each full text (``batch``: their encoding, from ``removal_plans``)
    and the outcome followed (given or picked)."""
    prober = _Prober(adapter, batch_size, batch.token_type_ids is not None, follow)
    for b, p in enumerate(plans):
        prober.add(*p.variant(()), b)
    if targets is None:
        values = prober.run()
        return values, torch.as_tensor(prober.picked)
    outcomes = torch.as_tensor([int(t) for t in targets])
    return prober.run(outcomes), outcomes


def evaluate_scores(
    model: Any,
    texts: Sequence[str],
    scores: Sequence[np.ndarray],
    targets: Sequence[int] | None = None,
    *,
    removal: Removal = "delete",
    bins: Sequence[float] = ERASER_BINS,
    batch_size: int = 64,
    completeness: Sequence[float] | None = None,
    unit: str = "token",
    follow: Any = None,
) -> list[Faithfulness]:
    """Metrics for score arrays made anywhere: one score per token (or word, or sentence).

    Args:
        model: A sequence classifier or causal LM (folder, adapter, or None for the demo
            classifier); any encoder with ``follow`` set.
        texts: The texts.
        scores: Per text: with ``unit="token"`` one score per token as ``model`` tokenizes it
            (special tokens included; their scores are ignored); with ``"word"`` or
            ``"sentence"`` one score per unit (``textlens.explanation.unit_groups``). Larger =
            more important.
        targets: Per text, the outcome followed (class index, token id; default: the one the
            model picks for the full text).
        removal: ``"delete"`` (default) or ``"mask"``.
        bins: Fractions of the units for comprehensiveness / sufficiency.
        batch_size: Variants per forward pass.
        completeness: Optional per-text completeness gaps to carry into the results.
        unit: What is removed: ``"token"`` (default), or whole ``"word"``s or ``"sentence"``s.
        follow: What is followed (``textlens.evaluate.follow``); default: the class or
            next-token probability.
    """
    from textlens.adapters.loading import load_model
    from textlens.targets import default_follow

    adapter = load_model(model)
    follow = follow or default_follow(adapter)
    if len(scores) != len(texts):
        raise TextlensError(f"{len(texts)} texts but {len(scores)} score arrays")
    batch, plans = removal_plans(adapter, texts, unit, removal)
    full, outcomes = full_values(adapter, batch, plans, follow, targets, batch_size)
    prober = _Prober(adapter, batch_size, batch.token_type_ids is not None, follow)
    work = []
    for b, p in enumerate(plans):
        values = np.asarray(scores[b], float)
        n = int(batch.lengths[b])
        if unit == "token":
            if values.shape != (n,):
                raise TextlensError(
                    f"text {b} has {n} tokens as the model splits it but {values.shape} scores"
                )
            values = values[[u[0] for u in p.units]]
        elif values.shape != (len(p.units),):
            raise TextlensError(f"text {b} has {len(p.units)} {unit}s but {values.shape} scores")
        m = len(p.units)
        ranked = sorted(range(m), key=lambda i: (-np.nan_to_num(values[i], nan=-np.inf), i))
        w: dict[str, Any] = {"values": values}
        ks = [max(1, math.ceil(q * m)) for q in bins]
        w["comp"] = [prober.add(*p.variant(ranked[:k]), b) for k in ks]
        w["suff"] = [prober.add(*p.variant(ranked[k:]), b) for k in ks]
        cuts = [round(f * m) for f in CURVE_POINTS]
        w["del"] = [prober.add(*p.variant(ranked[:k]), b) for k in cuts]
        w["ins"] = [prober.add(*p.variant(ranked[k:]), b) for k in cuts]
        w["loo"] = [prober.add(*p.variant([i]), b) for i in range(m)]
        work.append(w)
    probs = prober.run(outcomes)
    results = []
    for b, w in enumerate(work):
        whole = float(full[b])
        comp = tuple(whole - float(probs[i]) for i in w["comp"])
        suff = tuple(whole - float(probs[i]) for i in w["suff"])
        deletion = tuple(float(probs[i]) for i in w["del"])
        insertion = tuple(float(probs[i]) for i in w["ins"])
        loo = np.array([whole - probs[i] for i in w["loo"]])
        tau = kendall_tau(w["values"], loo)
        results.append(
            Faithfulness(
                comprehensiveness=float(np.mean(comp)),
                sufficiency=float(np.mean(suff)),
                comprehensiveness_bins=comp,
                sufficiency_bins=suff,
                deletion_curve=deletion,
                insertion_curve=insertion,
                deletion_auc=_auc(deletion),
                insertion_auc=_auc(insertion),
                loo_kendall_tau=tau,
                completeness=math.nan if completeness is None else float(completeness[b]),
                probability=whole,
                extras={
                    "label": int(outcomes[b]),
                    "removal": removal,
                    "unit": unit,
                    "followed": follow.description,
                },
            )
        )
    return results


def evaluate(
    explanations: Sequence[Any],
    model: Any = None,
    *,
    layer: int | None = None,
    removal: Removal = "delete",
    bins: Sequence[float] = ERASER_BINS,
    batch_size: int = 64,
    unit: str = "token",
    follow: Any = None,
) -> Evaluation:
    """Faithfulness of Explanations (sub-word level, from ``explain``) on the model they explain:
    one ``Faithfulness`` each, in a list that shows as a table in a notebook (``Evaluation``).

    The outcome followed is each explanation's target (its class, its next token); a layered
    explanation is ranked by ``layer`` (default: its last row). With ``unit="word"`` or
    ``"sentence"``, whole units are removed, ranked by their scores as ``to_units`` combines
    them (each method's own reduction). Integrated gradients' convergence delta becomes
    ``completeness``. ``follow``: see ``evaluate_scores`` (needed for targets without an
    outcome, e.g. a similarity).
    """
    exps = list(explanations)
    for e in exps:
        if e.level != "subword":
            raise TextlensError("evaluate needs sub-word explanations (before to_units)")
        if e.target.index is None and follow is None:
            raise TextlensError(
                "evaluate needs explanations of an outcome (their target index), or follow="
            )
    deltas = [
        abs(float(e.extras["convergence_delta"])) if "convergence_delta" in e.extras else math.nan
        for e in exps
    ]
    shown = [e if unit == "token" else e.to_units(unit) for e in exps]
    indexed = all(e.target.index is not None for e in exps)
    targets = [int(e.target.index) for e in exps] if indexed else None
    found = evaluate_scores(
        model,
        [e.text for e in exps],
        [_row_scores(e, layer) for e in shown],
        targets,
        removal=removal,
        bins=bins,
        batch_size=batch_size,
        completeness=deltas,
        unit=unit,
        follow=follow,
    )
    return Evaluation(found, exps)


SCALARS = (
    "comprehensiveness", "sufficiency", "naopc", "deletion_auc", "insertion_auc",
    "loo_kendall_tau", "completeness", "probability",
)  # fmt: skip
"""The metrics of a ``Faithfulness`` that are one number (its tables' columns)."""


class Evaluation(list):
    """The ``Faithfulness`` of each explanation (a list, as ``evaluate`` returns it), which
    shows as a table in a notebook and converts to a DataFrame."""

    def __init__(self, results: Sequence[Faithfulness], explanations: Sequence[Any] = ()):
        super().__init__(results)
        self.explanations = tuple(explanations)

    def rows(self) -> list[dict[str, Any]]:
        """One record per explanation: its text, method and target, then every one-number
        metric."""
        out = []
        for k, result in enumerate(self):
            exp = self.explanations[k] if k < len(self.explanations) else None
            record: dict[str, Any] = {
                "text": exp.text if exp is not None else "",
                "method": exp.method if exp is not None else "",
                "target": exp.target.label if exp is not None else None,
            }
            record.update({name: float(getattr(result, name)) for name in SCALARS})
            out.append(record)
        return out

    def to_frame(self) -> Any:
        """A pandas DataFrame: a row per explanation (see ``rows``)."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def _repr_html_(self) -> str:
        import html

        head = ["text", "method", "target", *SCALARS]
        cells = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
        for record in self.rows():
            text = str(record["text"])
            shown = [
                text if len(text) <= 60 else text[:57] + "...",
                str(record["method"]),
                str(record["target"]),
                *("n/a" if not math.isfinite(record[n]) else f"{record[n]:.3f}" for n in SCALARS),
            ]
            cells.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in shown) + "</tr>")
        return f"<table>{''.join(cells)}</table>"

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
    """Collects token-id variants, runs them in batches, returns their class probabilities."""

    def __init__(self, adapter: Any, batch_size: int, token_types: bool) -> None:
        self.adapter = adapter
        self.batch_size = batch_size
        self.token_types = token_types
        self.variants: list[tuple[list[int], list[int]]] = []

    def add(self, ids: list[int], types: list[int]) -> int:
        self.variants.append((ids, types))
        return len(self.variants) - 1

    @torch.no_grad()
    def run(self) -> np.ndarray:
        adapter, out = self.adapter, None
        order = sorted(range(len(self.variants)), key=lambda i: len(self.variants[i][0]))
        pad = adapter.pad_token_id
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            width = max(1, max(len(self.variants[i][0]) for i in index))
            ids = torch.full((len(index), width), pad, dtype=torch.long)
            types = torch.zeros((len(index), width), dtype=torch.long)
            mask = torch.zeros((len(index), width), dtype=torch.long)
            for row, i in enumerate(index):
                v_ids, v_types = self.variants[i]
                ids[row, : len(v_ids)] = torch.tensor(v_ids, dtype=torch.long)
                types[row, : len(v_types)] = torch.tensor(v_types, dtype=torch.long)
                mask[row, : len(v_ids)] = 1
            batch = TokenBatch(
                texts=("",) * len(index),
                input_ids=ids.to(adapter.device),
                attention_mask=mask.to(adapter.device),
                special_mask=torch.zeros_like(ids, dtype=torch.bool).to(adapter.device),
                token_type_ids=types.to(adapter.device) if self.token_types else None,
                tokens=((),) * len(index),
                offsets=((),) * len(index),
                n_truncated=(0,) * len(index),
            )
            logits = adapter.forward(adapter.embed(batch), batch).logits
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            if out is None:
                out = np.zeros((len(self.variants), probs.shape[-1]))
            out[index] = probs
        return out  # (variant, class)


def _row_scores(exp: Any, layer: int | None) -> np.ndarray:
    if not exp.layered:
        return np.asarray(exp.scores, float)
    return np.asarray(exp.row(layer), float)


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
) -> list[Faithfulness]:
    """Metrics for score arrays made anywhere: one score per token of the model's tokenization.

    Args:
        model: A sequence classifier (folder, adapter, or None for the demo classifier).
        texts: The texts.
        scores: Per text, one score per token as ``model`` tokenizes it (special tokens
            included; their scores are ignored). Larger = more important.
        targets: Per text, the class whose probability is followed (default: the predicted one).
        removal: ``"delete"`` (default) or ``"mask"``.
        bins: Fractions of the real tokens for comprehensiveness / sufficiency.
        batch_size: Variants per forward pass.
        completeness: Optional per-text completeness gaps to carry into the results.
    """
    from textlens.adapters.loading import load_model

    adapter = load_model(model)
    if adapter.task != "sequence-classification":
        raise TextlensError("faithfulness metrics need a sequence classifier")
    if removal not in ("delete", "mask"):
        raise TextlensError(f"unknown removal {removal!r}; use 'delete' or 'mask'")
    if len(scores) != len(texts):
        raise TextlensError(f"{len(texts)} texts but {len(scores)} score arrays")
    batch = adapter.encode(list(texts), warn=False)
    mask_id = adapter.special_token_id("mask")
    prober = _Prober(adapter, batch_size, batch.token_type_ids is not None)
    plans = []
    for b in range(len(texts)):
        n = int(batch.lengths[b])
        ids = batch.input_ids[b, :n].tolist()
        types = (
            batch.token_type_ids[b, :n].tolist() if batch.token_type_ids is not None else [0] * n
        )
        special = batch.special_mask[b, :n].tolist()
        values = np.asarray(scores[b], float)
        if values.shape != (n,):
            raise TextlensError(
                f"text {b} has {n} tokens as the model splits it but {values.shape} scores"
            )
        real = [i for i in range(n) if not special[i]]
        if not real:
            raise TextlensError(f"text {b} has no tokens to remove")
        ranked = sorted(real, key=lambda i: (-np.nan_to_num(values[i], nan=-np.inf), i))

        def variant(removed: set[int], ids=ids, types=types, n=n) -> tuple[list[int], list[int]]:
            if removal == "mask":
                return [mask_id if i in removed else ids[i] for i in range(n)], list(types)
            keep = [i for i in range(n) if i not in removed]
            return [ids[i] for i in keep], [types[i] for i in keep]

        label = None if targets is None else int(targets[b])
        plan = {"real": real, "ranked": ranked, "values": values, "label": label, "n": n}
        plan["variant"] = variant
        plans.append(plan)
    for p in plans:
        real, ranked, variant = p["real"], p["ranked"], p["variant"]
        p["full"] = prober.add(*variant(set()))
        ks = [max(1, math.ceil(q * len(real))) for q in bins]
        p["comp"] = [prober.add(*variant(set(ranked[:k]))) for k in ks]
        p["suff"] = [prober.add(*variant(set(ranked[k:]))) for k in ks]
        cuts = [round(f * len(real)) for f in CURVE_POINTS]
        p["del"] = [prober.add(*variant(set(ranked[:k]))) for k in cuts]
        p["ins"] = [prober.add(*variant(set(ranked[k:]))) for k in cuts]
        p["loo"] = [prober.add(*variant({i})) for i in real]
    all_probs = prober.run()
    results = []
    for b, p in enumerate(plans):
        if p["label"] is None:  # the predicted class of the full text
            p["label"] = int(all_probs[p["full"]].argmax())
        probs = all_probs[:, p["label"]]
        full = float(probs[p["full"]])
        comp = tuple(full - float(probs[i]) for i in p["comp"])
        suff = tuple(full - float(probs[i]) for i in p["suff"])
        deletion = tuple(float(probs[i]) for i in p["del"])
        insertion = tuple(float(probs[i]) for i in p["ins"])
        loo = np.array([full - probs[i] for i in p["loo"]])
        tau = kendall_tau(p["values"][p["real"]], loo)
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
                probability=full,
                extras={"label": p["label"], "removal": removal},
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
) -> list[Faithfulness]:
    """Faithfulness of Explanations (sub-word level, from ``explain``) on the model they explain.

    The class followed is each explanation's target class; a layered explanation is ranked by
    ``layer`` (default: its last row). Integrated gradients' convergence delta becomes
    ``completeness``.
    """
    exps = list(explanations)
    for e in exps:
        if e.level != "subword":
            raise TextlensError("evaluate needs sub-word explanations (before to_words)")
        if e.target.index is None:
            raise TextlensError("evaluate needs explanations of a class (their target index)")
    deltas = [
        abs(float(e.extras["convergence_delta"])) if "convergence_delta" in e.extras else math.nan
        for e in exps
    ]
    return evaluate_scores(
        model,
        [e.text for e in exps],
        [_row_scores(e, layer) for e in exps],
        [int(e.target.index) for e in exps],
        removal=removal,
        bins=bins,
        batch_size=batch_size,
        completeness=deltas,
    )

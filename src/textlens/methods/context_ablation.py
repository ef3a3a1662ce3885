"""Context ablation: which units of a long context (sentences, paragraphs, documents) the
explained value depends on, from the value with random subsets of them removed.

Each ablation deletes a random half of the units (their tokens; special tokens and text outside
every unit, such as a question after the documents, stay) and reads the target on what is
left, in batched forward passes. A sparse linear model of the value on which units were kept
(scikit-learn's Lasso) gives each unit its effect; its fit on ablations it did not see says how
far to trust them. With few units, each is removed alone instead (exact leave-one-out).

References:
    Cohen-Wang et al., 2024, "ContextCite: Attributing Model Generation to Context",
    https://arxiv.org/abs/2409.00729
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from textlens import progress
from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.errors import TextlensError
from textlens.explanation import Unit, unit_groups
from textlens.lazy import torch
from textlens.methods.base import Scores, forward_memory_bytes
from textlens.methods.integrated_gradients import auto_rows
from textlens.methods.registry import register
from textlens.methods.settings import setting
from textlens.targets import BoundTarget

HELD_OUT = 0.2
"""Share of the ablations kept out of the fit, on which the fit is judged."""


@register
@dataclass(frozen=True)
class ContextAblation:
    """Context ablation: each unit's effect on the target, from a sparse linear fit of the target
    over random subsets of the units removed (ContextCite).

    A token's score is its unit's effect shared evenly among the unit's tokens, so a unit's
    scores add up to its effect (``to_units`` with the same unit gives it back). ``extras``
    hold ``fit_r2`` (the fit's R^2 on held-out ablations: near 1, the effects explain the
    value; near 0 or below, they do not) and ``exact`` (1 where every unit was removed alone).

    Args:
        units: What is removed: ``sentence``, ``paragraph`` or ``document`` (the documents a
            prompt was built from).
        n_ablations: Random subsets removed (each unit kept with probability 1/2).
        alpha: The Lasso's L1 penalty (larger: fewer units with an effect).
        exact_up_to: With at most this many units, each is removed alone instead (exact
            leave-one-out: the effect is the drop of the value without it).
        internal_batch_size: Ablated texts per forward pass; None fits about 4096 tokens.
        seed: Seeds the subsets (each text on its own, so a batch gives what one text gives).

    References:
        Cohen-Wang et al., 2024, https://arxiv.org/abs/2409.00729
    """

    name: ClassVar[str] = "context-ablation"
    encoder_decoder: ClassVar[bool] = False  # removing source tokens moves the decoder
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = False
    cost_setting: ClassVar[str] = "n_ablations"
    score_label: ClassVar[str] = "effect of the unit on the target (+ for target)"
    diagnostics: ClassVar[tuple[tuple[str, str], ...]] = (
        ("fit_r2", "fit R^2 on held-out ablations"),
    )
    test_settings: ClassVar[dict[str, Any]] = {"n_ablations": 16}
    units: Literal["sentence", "paragraph", "document"] = "sentence"
    n_ablations: int = setting(64, low=4, cap=1024)
    alpha: float = setting(0.01, low=0)
    exact_up_to: int = setting(8, low=0)
    internal_batch_size: int | None = setting(None, low=1)
    seed: int = 0

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch``: every ablation of every text (forward only)."""
        return len(batch) * (self.n_ablations + 1)

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        width = batch.input_ids.shape[1]
        rows = len(batch) * self.n_ablations
        per_pass = min(rows, auto_rows(batch, self.internal_batch_size))
        return rows * width * 9 + forward_memory_bytes(model, batch, per_pass)  # ids, masks

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        _check_target(target, model)
        values = torch.zeros(batch.input_ids.shape, dtype=torch.float64)
        fits = torch.full((len(batch),), float("nan"), dtype=torch.float64)
        exact = torch.zeros(len(batch), dtype=torch.float64)
        for b in range(len(batch)):
            units = _units(batch, b, self.units, target)
            if not units:
                continue
            effects, fit, was_exact = self._effects(model, batch, target, b, units)
            for u, group in enumerate(units):
                values[b, group] = effects[u] / len(group)
            fits[b], exact[b] = fit, float(was_exact)
        device = batch.device
        return Scores(
            values.to(device),
            extras={"fit_r2": fits.to(device), "exact": exact.to(device)},
        )

    def _effects(
        self,
        model: ModelAdapter,
        batch: TokenBatch,
        target: BoundTarget,
        b: int,
        units: list[list[int]],
    ) -> tuple[np.ndarray, float, bool]:
        """Each unit's effect on text ``b``'s value, the fit's held-out R^2, and whether the
        effects are exact (every unit removed alone)."""
        n_units = len(units)
        if n_units <= self.exact_up_to:
            keep = ~np.eye(n_units, dtype=bool)  # each unit removed alone
            full, without = _values(model, batch, target, b, units, np.vstack([
                np.ones(n_units, bool), keep]), self.internal_batch_size)  # fmt: skip
            del full
            return without[0] - without[1:], float("nan"), True
        rng = np.random.default_rng([self.seed, zlib.crc32(batch.texts[b].encode("utf-8"))])
        keep = rng.random((self.n_ablations, n_units)) < 0.5
        _, found = _values(model, batch, target, b, units, keep, self.internal_batch_size)
        return _fit(keep, found, self.alpha, rng)


def _units(batch: TokenBatch, b: int, kind: Unit, target: BoundTarget) -> list[list[int]]:
    """Token indices of each unit of text ``b`` that may be removed: inside the documents
    when the text was built from documents (the question stays), and never the unit whose last
    token a causal LM's value is read after."""
    documents = batch.documents[b] if batch.documents else ()
    offsets = batch.offsets[b]
    special = tuple(batch.special_mask[b, : len(offsets)].tolist())  # without the padding
    groups = unit_groups(batch.texts[b], offsets, special, kind, documents)
    if documents:
        inside = [[t for t in g if any(a <= offsets[t][0] < e for a, e in documents)]
                  for g in groups]  # fmt: skip
        groups = [g for g in inside if g]
    if target.positions is not None:
        read = int(target.positions[b])
        groups = [g for g in groups if read not in g]
    return groups


def _check_target(target: BoundTarget, model: ModelAdapter) -> None:
    """Only a target read from the model's output at no fixed token position, or at a causal
    LM's read position (which moves with what is removed), can follow an ablated text."""
    if target.positions is not None and target.select_from is not None:
        return
    if model.task == "sequence-classification" and not target.needs_hidden_states:
        return
    raise TextlensError(
        "context-ablation explains a classifier's class or a causal LM's next tokens; this "
        "target reads fixed token positions, which removing text moves"
    )


def _values(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    b: int,
    units: list[list[int]],
    keep: np.ndarray,
    internal_batch_size: int | None,
) -> tuple[float, np.ndarray]:
    """The target's value of text ``b`` with the units where ``keep`` is False removed, for
    every row of ``keep`` ``(R, U)``, in batches; and the clean text's value."""
    length = int(batch.lengths[b])
    ids = batch.input_ids[b, :length]
    in_unit = np.full(length, -1)
    for u, group in enumerate(units):
        in_unit[group] = u
    read = int(target.positions[b]) if target.positions is not None else length - 1
    rows = []
    outside = in_unit < 0
    for mask in keep:
        stays = outside | mask[np.maximum(in_unit, 0)]  # a token outside every unit stays
        kept = np.nonzero(stays)[0].tolist()
        rows.append((kept, int((~stays[:read]).sum())))
    step = max(1, auto_rows(batch, internal_batch_size))
    out = np.zeros(len(rows))
    began = time.perf_counter()
    for start in range(0, len(rows), step):
        part = rows[start : start + step]
        out[start : start + len(part)] = _run(model, batch, target, b, ids, part, read)
        progress.bar(start + len(part), len(rows), "ablated texts", began)
    return float("nan"), out


def _run(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    b: int,
    ids: torch.Tensor,
    part: list[tuple[list[int], int]],
    read: int,
) -> np.ndarray:
    """One forward pass of ablated copies of text ``b``; each row's target value."""
    from textlens.methods.base import trim

    width = max(len(kept) for kept, _ in part)
    n = len(part)
    new_ids = torch.full((n, width), model.pad_token_id, dtype=torch.long, device=ids.device)
    mask = torch.zeros((n, width), dtype=torch.long, device=ids.device)
    for r, (kept, _) in enumerate(part):
        new_ids[r, : len(kept)] = ids[kept]
        mask[r, : len(kept)] = 1
    types = batch.token_type_ids
    sub = trim(batch.select([b] * n), width)
    sub = type(sub)(
        texts=sub.texts, input_ids=new_ids, attention_mask=mask,
        special_mask=torch.zeros_like(mask, dtype=torch.bool),
        token_type_ids=None if types is None else torch.zeros_like(new_ids),
        tokens=sub.tokens, offsets=sub.offsets, n_truncated=sub.n_truncated,
    )  # fmt: skip
    rows = torch.full((n,), b, dtype=torch.long, device=ids.device)
    with torch.no_grad():
        embeds = model.embed(sub)
        if target.select_from is None:
            out = model.forward(embeds, sub)
            return target.select(out, rows).double().cpu().numpy()
        at = torch.tensor([read - removed for _, removed in part], device=ids.device)
        if getattr(model, "keeps_logits", False):
            kept = torch.unique(at)
            out = model.forward(embeds, sub, logits_at=kept)
            column = torch.searchsorted(kept, at)
        else:
            out = model.forward(embeds, sub)
            column = at
        source = torch.arange(n, device=ids.device)
        return target.select_from(out, rows, source, column).double().cpu().numpy()


def _fit(
    keep: np.ndarray, values: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, float, bool]:
    """The Lasso's effects (fit on every ablation) and its R^2 on held-out ablations (fit on
    the others first)."""
    try:
        from sklearn.linear_model import Lasso
    except ImportError:
        raise TextlensError(
            "context-ablation fits a sparse linear model with scikit-learn: pip install "
            "'textlens[context]'"
        ) from None
    x = keep.astype(float)
    order = rng.permutation(len(x))
    cut = max(2, round(HELD_OUT * len(x)))
    test, train = order[:cut], order[cut:]
    r2 = float("nan")
    if len(train) >= 2:
        held = Lasso(alpha=alpha, max_iter=10000).fit(x[train], values[train])
        residual = values[test] - held.predict(x[test])
        spread = ((values[test] - values[test].mean()) ** 2).sum()
        r2 = float(1 - (residual**2).sum() / spread) if spread > 0 else float("nan")
    model = Lasso(alpha=alpha, max_iter=10000).fit(x, values)
    return np.asarray(model.coef_, float), r2, False

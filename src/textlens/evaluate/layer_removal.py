"""Faithfulness of layer explanations: remove the top tokens' hidden states at their layer.

A layered explanation has one row of token scores per layer. For layer ``l`` the tokens are
ranked by that row; the hidden states of the top ``k`` tokens *after block l* (0 = the embedding
output) are replaced by the layer's mean state and the rest of the model runs on, unchanged.
Comprehensiveness at layer ``l`` is ``p(x) - p(x with those states replaced)``, averaged over the
ERASER bins (the top 1, 5, 10, 20 and 50% of the tokens, at least one), where ``p`` is what the
removal metrics follow (the class or next-token probability of the full text's outcome).

The replacement is the mean hidden state of that layer over the real, non-special tokens of the
evaluated texts: a vector of the layer's own distribution that carries no token's content (a
zero vector would be far outside it, and a pad token's state depends on its position). Special
tokens ([CLS], [SEP], ...) are never ranked nor replaced, as in the input-level metrics.

Picture: ``textlens.render.evaluation.plot_layer_removal``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textlens.errors import TextlensError
from textlens.evaluate.faithfulness import ERASER_BINS
from textlens.lazy import torch


@dataclass(frozen=True)
class LayerRemoval:
    """Per text and layer, the comprehensiveness of removing the top tokens' states there.

    Attributes:
        layers: The layer numbers (hidden-state indices) of the columns.
        comprehensiveness: ``(n_texts, n_layers)``.
        bins: The fractions of the tokens removed (averaged over).
        followed: What was followed (e.g. "probability of the followed class").
    """

    layers: tuple[int, ...]
    comprehensiveness: np.ndarray
    bins: tuple[float, ...]
    followed: str

    def summary(self, n_resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
        """Per layer: the mean over texts and its 95% bootstrap interval."""
        from textlens.evaluate.comparison import bootstrap_interval

        out = {}
        for j, layer in enumerate(self.layers):
            values = [float(x) for x in self.comprehensiveness[:, j]]
            mean, low, high = bootstrap_interval(values, n_resamples, seed)
            out[str(layer)] = {"mean": mean, "low": low, "high": high}
        return out


def layer_comprehensiveness(
    explanations: Sequence[Any],
    model: Any = None,
    *,
    layers: Sequence[int] | None = None,
    scores: Sequence[np.ndarray] | None = None,
    bins: Sequence[float] = ERASER_BINS,
    batch_size: int = 32,
    follow: Any = None,
) -> LayerRemoval:
    """Per-layer comprehensiveness of layered explanations (see the module docstring).

    Args:
        explanations: Layered, sub-word Explanations of ``model`` (``explain`` with a layered
            method), all with the chosen layers.
        model: The model they explain (folder, adapter, or None for the demo classifier).
        layers: Which layers (default: every layer the first explanation has).
        scores: Instead of the explanations' own rows, score arrays ``(n_layers, n_tokens)``
            per text made elsewhere (e.g. a random ranking), one row per chosen layer.
        bins: Fractions of the tokens removed.
        batch_size: Texts per forward pass.
        follow: What is followed (``textlens.evaluate.follow``); default: the class or
            next-token probability of the model's outcome on the full text.
    """
    from textlens.adapters.loading import load_model
    from textlens.targets import default_follow

    exps = list(explanations)
    if not exps:
        raise TextlensError("no explanations to evaluate: give at least one")
    for e in exps:
        if not e.layered or e.layers is None:
            raise TextlensError(
                f"{e.method} gives one row of scores, not one per layer: use a layered method "
                "(information-loss, layer-conductance)"
            )
        if e.level != "subword":
            raise TextlensError("layer removal needs sub-word explanations (before to_units)")
    chosen = tuple(exps[0].layers if layers is None else layers)
    if scores is None:
        for e in exps:
            missing = [v for v in chosen if v not in e.layers]
            if missing:
                raise TextlensError(f"an explanation lacks layers {missing}; it has {e.layers}")
        rows = [np.stack([np.asarray(e.row(v), float) for v in chosen]) for e in exps]
    else:
        if len(scores) != len(exps):
            raise TextlensError(f"{len(exps)} explanations but {len(scores)} score arrays")
        rows = [np.asarray(s, float) for s in scores]
    adapter = load_model(model)
    follow = follow or default_follow(adapter)
    bad = [v for v in chosen if not 0 <= v <= adapter.n_layers]
    if bad:
        raise TextlensError(f"layers {bad} are not in 0..{adapter.n_layers}")
    batch = adapter.encode([e.text for e in exps], warn=False)
    n = batch.input_ids.shape[0]
    for b, r in enumerate(rows):
        length = int(batch.lengths[b])
        if r.shape != (len(chosen), length):
            raise TextlensError(
                f"text {b}: {r.shape} scores, but it has {len(chosen)} layers x {length} tokens"
            )
    removable = (batch.real_mask & ~batch.special_mask).cpu()
    with torch.no_grad():
        embeds = adapter.embed(batch)
        full = np.zeros(n)
        outcomes = torch.zeros(n, dtype=torch.long)
        totals: dict[int, Any] = {v: None for v in chosen}
        count = 0.0
        for start in range(0, n, batch_size):
            part = list(range(start, min(n, start + batch_size)))
            sub = batch.select(part)
            index = torch.tensor(part, device=embeds.device)
            out = adapter.forward(embeds[index, : sub.input_ids.shape[1]], sub, hidden_states=True)
            picked = torch.as_tensor(
                [int(e.target.index) for e in (exps[i] for i in part)]
                if all(exps[i].target.index is not None for i in part)
                else follow.outcome(adapter, sub, out, index).tolist()
            )
            outcomes[part] = picked
            full[part] = follow.value(adapter, sub, out, picked.to(index.device)).float().cpu()
            keep = removable[part, : sub.input_ids.shape[1]].to(embeds.device)
            count += float(keep.sum())
            for v in chosen:
                h = out.hidden_states[v].float()
                summed = (h * keep.unsqueeze(-1).to(h.dtype)).sum((0, 1))
                totals[v] = summed if totals[v] is None else totals[v] + summed
        if count == 0:
            raise TextlensError("the texts have no tokens besides special ones to remove")
        means: dict[int, torch.Tensor] = {v: totals[v] / count for v in chosen}
        # one variant per (text, layer, bin): the positions whose states are replaced
        variants: list[tuple[int, int, torch.Tensor]] = []
        for b in range(n):
            real = torch.nonzero(removable[b]).flatten()
            m = len(real)
            for j in range(len(chosen)):
                row = np.nan_to_num(rows[b][j, real.numpy()], nan=-np.inf)
                weights = [float(x) for x in row]
                order = sorted(range(m), key=lambda i: (-weights[i], i))
                for q in bins:
                    k = max(1, math.ceil(q * m))
                    variants.append((b, j, real[torch.tensor(order[:k], dtype=torch.long)]))
        removed = np.zeros(len(variants))
        for j, v in enumerate(chosen):
            mine = [i for i, var in enumerate(variants) if var[1] == j]
            for start in range(0, len(mine), batch_size):
                part = mine[start : start + batch_size]
                texts = [variants[i][0] for i in part]
                sub = batch.select(texts)
                w = sub.input_ids.shape[1]
                mask = torch.zeros((len(part), w), dtype=torch.bool, device=embeds.device)
                for row, i in enumerate(part):
                    mask[row, variants[i][2].to(embeds.device)] = True
                index = torch.tensor(texts, device=embeds.device)

                def alter(h: torch.Tensor, mask: torch.Tensor = mask, v: int = v) -> torch.Tensor:
                    return torch.where(mask.unsqueeze(-1), means[v].to(h.dtype), h)

                with adapter.altering_states(v, alter):
                    out = adapter.forward(embeds[index, :w], sub)
                values = follow.value(adapter, sub, out, outcomes[texts].to(index.device))
                removed[part] = values.float().cpu().numpy()
    comp = np.zeros((n, len(chosen)))
    per = len(bins)
    for i, (b, j, _) in enumerate(variants):
        comp[b, j] += (full[b] - removed[i]) / per
    return LayerRemoval(
        layers=chosen, comprehensiveness=comp, bins=tuple(bins), followed=follow.description
    )

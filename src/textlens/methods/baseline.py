"""What a path method's baseline input itself predicts, and a warning when it favours the target.

Path methods (integrated gradients, layer conductance) explain ``f(input) - f(baseline)``. When the
baseline is already a confident prediction of the explained outcome (an all-pad text that a topic
classifier calls "sports"), that difference is small and the scores say little about the input.
The baseline's prediction costs one forward pass per text; it is kept in the explanation's extras
and a ``BaselineWarning`` names the baselines to try.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from textlens.lazy import torch
from textlens.targets import BoundTarget

EXTRAS: dict[str, str] = {
    "baseline_score": "the target's value at the baseline",
    "baseline_probability": "the baseline's probability for the explained outcome",
    "baseline_predicted": "the outcome the baseline itself predicts (index)",
    "baseline_predicted_probability": "the baseline's probability for its own prediction",
    "baseline_uniform": "the uniform share, 1 / number of outcomes",
    "baseline_favours": "1 where the baseline favours the explained outcome (see ``favours``)",
}


class BaselineWarning(UserWarning):
    """The baseline input already favours the explained outcome."""


def favours(probability: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """True where a baseline favours the target: its probability for it is more than halfway
    from the uniform share to certainty (above 0.75 with two classes, 0.6 with five)."""
    return probability > (1.0 + uniform) / 2.0


def report(
    target: BoundTarget,
    predict: Callable[[str], Any],
    token: str,
    choices: Sequence[str],
) -> dict[str, torch.Tensor]:
    """The baseline's own prediction per text, as extras (see ``EXTRAS``).

    Args:
        target: The bound target (its ``distribution`` gives the probabilities, if it has one).
        predict: ``predict(token)``: the model's outputs for the baseline built from ``token``,
            one row per text in batch order.
        token: The baseline in use.
        choices: Every baseline the method offers (the others are tried when it warns).
    """
    out = predict(token)
    rows = torch.arange(len(target.infos), device=_device(target))
    extras = {"baseline_score": target.select(out, rows).detach().float()}
    if target.distribution is None or target.index is None:
        return extras
    probability, predicted, top, uniform = _probabilities(target, out, rows)
    extras.update(
        baseline_probability=probability,
        baseline_predicted=predicted,
        baseline_predicted_probability=top,
        baseline_uniform=uniform,
    )
    bad = favours(probability, uniform)
    extras["baseline_favours"] = bad.to(probability.dtype)
    if bool(bad.any()):
        others = {}
        for other in choices:
            if other != token:
                others[other] = _probabilities(target, predict(other), rows)[0]
        message = _message(target, token, bad, probability, uniform, others)
        warnings.warn(message, BaselineWarning, stacklevel=3)
    return extras


def _device(target: BoundTarget) -> Any:
    return target.index.device if target.index is not None else None


def _probabilities(
    target: BoundTarget, out: Any, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    assert target.distribution is not None and target.index is not None
    dist = target.distribution(out, rows).detach().float()
    probability = dist.gather(1, target.index[rows].unsqueeze(1)).squeeze(1)
    top, predicted = dist.max(dim=-1)
    uniform = 1.0 / (dist > 0).sum(dim=-1).clamp(min=1).float()
    return probability, predicted, top, uniform


def _message(
    target: BoundTarget,
    token: str,
    bad: torch.Tensor,
    probability: torch.Tensor,
    uniform: torch.Tensor,
    others: dict[str, torch.Tensor],
) -> str:
    which = [int(b) for b in torch.nonzero(bad).flatten().tolist()]
    first = which[0]
    label = target.infos[first].label
    shown = f"{label!r} " if label is not None else ""
    tries: list[str] = []
    also: list[str] = []
    for other, p in sorted(others.items(), key=lambda kv: float(kv[1][which].mean())):
        mean = float(p[which].mean())
        kind = also if bool(favours(p[which], uniform[which]).all()) else tries
        kind.append(f"{other!r} (probability {mean:.2f})")
    advice = f"try the baseline {' or '.join(tries)}" if tries else ""
    if also:
        advice += ("; " if advice else "") + f"{' and '.join(also)} favour it too"
    return (
        f"the {token!r} baseline already favours the explained outcome {shown}for "
        f"{len(which)} of {len(bad)} text(s) (probability {float(probability[first]):.2f}, "
        f"uniform share {float(uniform[first]):.2f}), so the scores explain little of the "
        f"prediction; {advice or 'try another baseline'}"
    )


def announce_fallback(model: Any, kind: str, setting: str = "baseline") -> None:
    """Warn when the tokenizer has no ``kind`` token (``mask`` on GPT-2 or Llama), so that the
    token asked for is silently another one: the scores would equal another choice's."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or getattr(tokenizer, f"{kind}_token_id", None) is not None:
        return
    used = model.special_token_id(kind)
    try:
        shown = tokenizer.convert_ids_to_tokens(int(used))
    except (TypeError, ValueError, KeyError, IndexError):
        shown = "?"
    warnings.warn(
        f"this tokenizer has no {kind} token, so {setting}={kind!r} uses {shown!r} (id {used}) "
        f"instead; choose a token the model has with --{setting.replace('_', '-')} "
        f"({setting}= in Python)",
        BaselineWarning,
        stacklevel=3,
    )


def predictor(model: Any, batch: Any, target: BoundTarget) -> Callable[[str], Any]:
    """``predict(token)`` for baselines that replace every real word by ``token``."""

    from textlens.methods.base import forward_unique

    def predict(token: str) -> Any:
        with torch.no_grad():
            x0 = model.embed(batch, model.baseline_ids(batch, token))
        return forward_unique(model, batch, x0, hidden_states=target.needs_hidden_states)

    return predict

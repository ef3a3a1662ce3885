"""The function form, ``information_loss(x, phi)``, in the style of the reference
``Interpreter(x, Phi)``."""

from __future__ import annotations

from collections.abc import Callable

from textlens.errors import TextlensError
from textlens.lazy import torch
from textlens.methods.information.problem import (
    FLOOR_ABSOLUTE,
    Group,
    Result,
    Settings,
    regularization_scale,
)
from textlens.methods.information.solve import optimize


def information_loss(
    x: torch.Tensor,
    phi: Callable[[torch.Tensor], torch.Tensor],
    *,
    regularization: torch.Tensor | None = None,
    corpus: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    **settings: object,
) -> Result:
    """Function form, in the style of the reference ``Interpreter(x, Phi)``.

    Args:
        x: Word embeddings ``(S, K)`` for one text, or ``(B, T, K)`` for a padded batch.
        phi: Maps embeddings ``(N, T, K)`` to outputs ``(N, ...)``; unit axes last.
        regularization: ``r``, the spread of each output unit (broadcast against one row of
            Phi).
        corpus: Alternatively, embeddings ``(M, T, K)`` of real inputs: ``r`` becomes the
            floored per-unit std of Phi over them.
        mask: ``(B, T)`` True for real tokens (default: all).
        settings: Any ``Settings`` field (``rate``, ``n_samples``, ``max_steps``, ``seed``...).

    With neither ``regularization`` nor ``corpus``, ``r`` is the text's own root-mean-square
    output (the reference's fallback).

    Example:
        >>> res = information_loss(x, lambda e: e @ w)   # x: (5, 256)
        >>> res.sigma.shape
        torch.Size([1, 1, 5])
    """
    single = x.dim() == 2
    xb = x.unsqueeze(0) if single else x
    if xb.dim() != 3:
        raise TextlensError("x must be (words, dims) or (texts, words, dims)")
    real = (
        torch.ones(xb.shape[:2], dtype=torch.bool, device=xb.device)
        if mask is None
        else mask.to(xb.device).bool()
    )
    r = regularization
    if r is None and corpus is not None:
        with torch.no_grad():
            r = regularization_scale(phi(corpus.to(xb.device)))
    if r is None:
        with torch.no_grad():
            ref = phi(xb)
        r = ref.pow(2).mean().sqrt().clamp_min(FLOOR_ABSOLUTE)
    group = Group(phi=lambda e, rows: phi(e), scale=r.to(xb.device))
    known = set(Settings.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TextlensError(
            f"unknown setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return optimize([group], xb, real, Settings(**settings))  # type: ignore[arg-type]

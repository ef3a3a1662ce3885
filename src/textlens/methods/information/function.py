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
    token_axis: bool | None = None,
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
        token_axis: Whether Phi's axis 1 is the token axis (one output per input token), so
            that padded tokens' outputs are left out of the loss. None: when Phi's output has
            ``T`` entries on axis 1. Then a text gives the same sigma alone and padded in a
            batch.
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
    with torch.no_grad():
        ref = phi(xb)
    if token_axis is None:
        token_axis = ref.dim() >= 2 and ref.shape[1] == xb.shape[1]
    elif token_axis and (ref.dim() < 2 or ref.shape[1] != xb.shape[1]):
        raise TextlensError(
            f"token_axis=True needs Phi's axis 1 to have one entry per token ({xb.shape[1]}); "
            f"Phi gave shape {tuple(ref.shape)}"
        )
    r = regularization
    if r is None and corpus is not None:
        with torch.no_grad():
            r = regularization_scale(phi(corpus.to(xb.device)))
    out_mask = (lambda rows: real[rows]) if token_axis else None
    if r is not None:
        group = Group(phi=lambda e, rows: phi(e), scale=r.to(xb.device), out_mask=out_mask)
    else:  # each text's own root-mean-square output (over its real tokens' outputs)
        squares = ref.pow(2).reshape(ref.shape[0], ref.shape[1] if token_axis else 1, -1)
        if token_axis:
            squares = squares * real.unsqueeze(-1).to(squares.dtype)
            count = real.sum(1).to(squares.dtype) * squares.shape[-1]
        else:
            count = torch.full((ref.shape[0],), squares[0].numel(), dtype=squares.dtype)
        own = (squares.sum((1, 2)) / count.to(squares.device)).sqrt().clamp_min(FLOOR_ABSOLUTE)
        shape = (-1,) + (1,) * (ref.dim() - 1)

        def scaled(e: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return phi(e) / own[rows].view(shape)

        unit = torch.ones((), dtype=ref.dtype, device=xb.device)
        group = Group(phi=scaled, scale=unit, out_mask=out_mask)
    known = set(Settings.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TextlensError(
            f"unknown setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return optimize([group], xb, real, Settings(**settings))  # type: ignore[arg-type]

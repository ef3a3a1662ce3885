"""Adapters: one interface over every model textlens can explain.

Names are imported on first use, so that the protocol can be read without importing torch.
"""

from __future__ import annotations

from textlens.lazy import exports

_EXPORTS = {
    "ModelAdapter": "textlens.adapters.base",
    "TASKS": "textlens.adapters.base",
    "FunctionAdapter": "textlens.adapters.function",
    "HFAdapter": "textlens.adapters.hf",
    "Seq2SeqAdapter": "textlens.adapters.seq2seq",
    "TruncationWarning": "textlens.adapters.encoding",
    "load_model": "textlens.adapters.loading",
    "WIRING": "textlens.adapters.wiring",
    "Wiring": "textlens.adapters.wiring",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = exports(__name__, _EXPORTS)

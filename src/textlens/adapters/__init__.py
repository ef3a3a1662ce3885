"""Adapters: one interface over every model textlens can explain.

Names are imported on first use, so that the protocol can be read without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelAdapter": "textlens.adapters.base",
    "TASKS": "textlens.adapters.hf",
    "FunctionAdapter": "textlens.adapters.function",
    "HFAdapter": "textlens.adapters.hf",
    "TruncationWarning": "textlens.adapters.encoding",
    "load_model": "textlens.adapters.loading",
    "WIRING": "textlens.adapters.wiring",
    "Wiring": "textlens.adapters.wiring",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'textlens.adapters' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__

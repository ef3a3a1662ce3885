"""Adapters: one interface over every model textlens can explain."""

from textlens.adapters.base import ModelAdapter
from textlens.adapters.hf import TASKS, FunctionAdapter, HFAdapter, TruncationWarning, load_model
from textlens.adapters.wiring import WIRING, Wiring

__all__ = [
    "TASKS",
    "WIRING",
    "FunctionAdapter",
    "HFAdapter",
    "ModelAdapter",
    "TruncationWarning",
    "Wiring",
    "load_model",
]

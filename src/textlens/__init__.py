"""textlens: which input words a prediction or any hidden state of an NLP model depends on.

Attributes are imported lazily, so that ``import textlens.render`` (and the CLI's start-up) does
not pay for importing torch.
"""

from __future__ import annotations

from textlens.lazy import exports

__version__ = "0.1.0"

_EXPORTS = {
    "explain": "textlens.pipeline",
    "explain_many": "textlens.pipeline",
    "explain_labels": "textlens.pipeline",
    "explain_pair": "textlens.pipeline",
    "load_model": "textlens.adapters.loading",
    "HFAdapter": "textlens.adapters.hf",
    "FunctionAdapter": "textlens.adapters.function",
    "Explanation": "textlens.explanation",
    "TextlensError": "textlens.errors",
    "METHODS": "textlens.methods",
    "get_method": "textlens.methods",
    "describe_methods": "textlens.methods",
}

__all__ = [*sorted(_EXPORTS), "list_methods"]


def list_methods() -> list[str]:
    """Names of every registered attribution method."""
    from textlens.methods import METHODS

    return sorted(METHODS)


__getattr__ = exports(__name__, _EXPORTS)[0]


def __dir__() -> list[str]:
    return sorted(__all__)

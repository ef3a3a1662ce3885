"""The method registry: every attribution method by its kebab-case name.

``METHODS`` is filled by ``@register`` when the method modules below are imported; it is the one
place that lists every key the CLI, the server and the evaluation can use.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from textlens.errors import TextlensError
from textlens.methods.base import Method, Scores

METHODS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: add a method dataclass to ``METHODS`` under its ``name``."""
    name = cls.name  # type: ignore[attr-defined]
    if name in METHODS and METHODS[name] is not cls:
        raise ValueError(f"two methods are called {name!r}")
    METHODS[name] = cls
    return cls


def get_method(method: str | Method, **params: Any) -> Method:
    """A method instance from a registry name and settings (or the instance itself).

    Raises:
        TextlensError: unknown name (the message lists the registry) or unknown setting.
    """
    if not isinstance(method, str):
        if params:
            return dataclasses.replace(method, **params)  # type: ignore[type-var]
        return method
    cls = METHODS.get(method)
    if cls is None:
        raise TextlensError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TextlensError(
            f"method {method!r} has no setting {', '.join(unknown)}; "
            f"its settings: {', '.join(sorted(known)) or 'none'}"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:
        raise TextlensError(f"bad settings for {method!r}: {error}") from error


def describe_methods() -> list[dict[str, Any]]:
    """Every registered method with its parameters, types and defaults, read from the dataclass."""
    out = []
    for name in sorted(METHODS):
        cls = METHODS[name]
        hints = typing.get_type_hints(cls)
        params = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            if dataclasses.is_dataclass(default):
                default = getattr(default, "name", repr(default))
            params.append(
                {"name": f.name, "type": _type_name(hints.get(f.name)), "default": default}
            )
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append(
            {
                "name": name,
                "class": cls.__name__,
                "signed": cls.signed,
                "layered": cls.layered,
                "summary": doc[0] if doc else "",
                "params": params,
            }
        )
    return out


def _type_name(hint: Any) -> str:
    if hint is None:
        return "any"
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    return text or str(hint).replace("typing.", "")


from textlens.methods import (  # noqa: E402  (modules register themselves)
    attention,
    gradient,
    information_loss,
    integrated_gradients,
    layer_conductance,
    occlusion,
    smoothgrad,
)

__all__ = ["METHODS", "Method", "Scores", "describe_methods", "get_method", "register"]
del (
    attention,
    gradient,
    information_loss,
    integrated_gradients,
    layer_conductance,
    occlusion,
    smoothgrad,
)

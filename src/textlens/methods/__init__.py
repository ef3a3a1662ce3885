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
                "signed": _class_flag(cls, "signed"),
                "layered": _class_flag(cls, "layered"),
                "summary": doc[0] if doc else "",
                "params": params,
            }
        )
    return out


def _class_flag(cls: Any, name: str) -> bool:
    """A class-level flag; where it depends on the settings (smoothgrad), its default's value."""
    value = getattr(cls, name)
    return bool(value) if isinstance(value, bool) else bool(getattr(cls(), name))


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


def parse_setting(hint: Any, raw: str) -> Any:
    """Convert a string (a command-line flag, a form field) to a setting of type ``hint``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        if raw not in args:
            raise TextlensError(f"{raw!r} is not one of: {', '.join(map(str, args))}")
        return raw
    non_none = [a for a in args if a is not type(None)] or [hint]
    if raw.lower() in ("none", "all") and type(None) in args:
        return None
    kind = non_none[0]
    if typing.get_origin(kind) is tuple:
        return tuple(int(v) for v in raw.split(",") if v.strip())
    if typing.get_origin(kind) is typing.Literal:
        return parse_setting(kind, raw)
    if kind is bool:
        return raw.lower() in ("1", "true", "yes", "on")
    return kind(raw)


def parse_settings(method: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Check and convert settings given as text for ``method``: one clear error per mistake.

    Values that are not strings (JSON numbers, booleans, lists) are read as their text form.
    """
    cls = METHODS.get(method)
    if cls is None:
        raise TextlensError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    hints = typing.get_type_hints(cls)
    params = {}
    for name, value in raw.items():
        if name not in hints or name in ("name", "signed", "layered"):
            flag = "--" + name.replace("_", "-")
            raise TextlensError(f"{flag} is not a setting of {method!r} (see `textlens methods`)")
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        elif value is None:
            value = "none"
        elif not isinstance(value, str):
            value = str(value)
        try:
            params[name] = parse_setting(hints[name], value)
        except ValueError as error:
            raise TextlensError(
                f"bad value {value!r} for --{name.replace('_', '-')}: {error}"
            ) from error
    return params


def parse_layers(method: str, layers: str | None) -> dict[str, Any]:
    """``"all"`` or ``"1,3,6"`` as the ``layers`` setting of ``method`` ({} when not given)."""
    if layers is None:
        return {}
    with_layers = sorted(
        n for n, c in METHODS.items() if "layers" in {f.name for f in dataclasses.fields(c)}
    )
    if method not in with_layers:
        raise TextlensError(
            f"--layers applies to {', '.join(with_layers)}; {method!r} has no layers"
        )
    if layers.strip().lower() == "all":
        return {"layers": None}
    try:
        return {"layers": tuple(int(v) for v in layers.split(",") if v.strip())}
    except ValueError as error:
        raise TextlensError(
            f"--layers takes 'all' or numbers like 1,3,6, not {layers!r}"
        ) from error

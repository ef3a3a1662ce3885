"""The method registry: every attribution method by its kebab-case name.

``METHODS`` is filled by ``@register`` when the method modules are imported (the package
``textlens.methods`` imports all of them); this module imports none of them, so registration
does not depend on the order of imports.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

import textlens.methods.settings as settings
from textlens import outputs
from textlens.errors import TextlensError
from textlens.methods.base import Method, describe

METHODS: dict[str, type] = {}
_CHECKED: set[type] = set()
"""Method classes whose constructor already checks the settings."""
DEFAULT_METHOD = "integrated-gradients"
"""The method used when none is named (the CLI, the server, jobs and ``explain``)."""


def register(cls: type) -> type:
    """Class decorator: add a method dataclass to ``METHODS`` under its ``name``.

    Every instance is checked against the settings' declared types and ranges when it is made
    (also through ``dataclasses.replace``), so a bad value never reaches the hot path.
    """
    name = str(vars(cls)["name"])
    if name in METHODS and METHODS[name] is not cls:
        raise ValueError(f"two methods are called {name!r}")
    if name in settings.RESERVED_METHODS:
        raise ValueError(f"{name!r} is a reserved name (textlens evaluate uses it); choose another")
    taken = sorted(f.name for f in dataclasses.fields(cls) if f.name in settings.RESERVED)
    if taken:
        raise ValueError(
            f"method {name!r} has a setting called {taken[0]!r}, which a front end uses for its "
            "own option; rename the setting"
        )
    if not callable(getattr(cls, "memory_bytes", None)):
        raise TypeError(
            f"method {name!r} declares no memory_bytes(model, batch): every method estimates its "
            "peak memory, so that settings that cannot fit are refused before a run"
        )
    if cls not in _CHECKED:
        init = cls.__init__  # type: ignore[misc]

        @functools.wraps(init)
        def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            settings.check_method(self)

        cls.__init__ = checked_init  # type: ignore[misc]
        _CHECKED.add(cls)
    METHODS[name] = cls
    for output, how in describe(cls, "provides").items():
        outputs.PROVIDERS.setdefault(output, {})[name] = how
    return cls


def get_method(method: str | Method, **params: Any) -> Method:
    """A method instance from a registry name and settings (or the instance itself).

    Raises:
        TextlensError: unknown name (the message lists the registry), unknown setting, or a
            value outside the setting's range.
    """
    if not isinstance(method, str):
        if params:
            try:
                return dataclasses.replace(method, **params)  # type: ignore[type-var]
            except TypeError as error:
                raise TextlensError(f"bad settings for {method.name!r}: {error}") from error
        return method
    cls = settings.known_method(METHODS, method)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TextlensError(
            f"method {method!r} has no setting {', '.join(unknown)}; "
            f"its settings: {', '.join(sorted(known)) or 'none'}"
        )
    # a list where a setting takes a tuple (layers=[1, 6]): the same numbers, hashable
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        return cls(**params)
    except TextlensError:
        raise
    except (TypeError, ValueError) as error:
        raise TextlensError(f"bad settings for {method!r}: {error}") from error


def describe_methods() -> list[dict[str, Any]]:
    """Every registered method with its parameters, types and defaults, read from the dataclass."""
    out = []
    for name in sorted(METHODS):
        cls = METHODS[name]
        hints = typing.get_type_hints(cls)
        helps = argument_docs(cls.__doc__ or "")
        params = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            if dataclasses.is_dataclass(default):
                default = getattr(default, "name", repr(default))
            bounds = f.metadata.get("range")
            params.append(
                {
                    "name": f.name,
                    "help": helps.get(f.name, ""),
                    "type": _type_name(hints.get(f.name)),
                    "default": default,
                    "range": None if bounds is None or bounds.unbounded else bounds.describe(),
                    "cap": None if bounds is None else bounds.cap,
                    "control": _control(hints.get(f.name), bounds),
                }
            )
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append(
            {
                "name": name,
                "class": cls.__name__,
                "signed": _class_flag(cls, "signed"),
                "layered": _class_flag(cls, "layered"),
                "summary": doc[0] if doc else "",
                "provides": dict(describe(cls, "provides")),
                "encoder_decoder": bool(describe(cls, "encoder_decoder")),
                "params": params,
            }
        )
    return out


def _class_flag(cls: Any, name: str) -> bool:
    """A class-level flag; where it depends on the settings (smoothgrad), its default's value."""
    value = getattr(cls, name)
    return bool(value) if isinstance(value, bool) else bool(getattr(cls(), name))


def _control(hint: Any, bounds: Any) -> dict[str, Any]:
    """How a form asks for a setting: ``{"kind": "choice", "choices": [...]}``, ``{"kind":
    "number", "step": 1 or "any", "min": .., "max": ..}``, ``{"kind": "checkbox"}`` or ``{"kind":
    "text"}``; ``optional``: none is a valid value (the field may stay empty)."""
    args, origin = typing.get_args(hint), typing.get_origin(hint)
    optional = False
    if origin in (typing.Union, types.UnionType):
        optional = type(None) in args
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return {"kind": "text", "optional": optional}
        hint = inner[0]
        args, origin = typing.get_args(hint), typing.get_origin(hint)
    if origin is typing.Literal:
        return {"kind": "choice", "choices": [str(a) for a in args], "optional": optional}
    if hint is bool:
        return {"kind": "checkbox", "optional": optional}
    if hint in (int, float):
        found: dict[str, Any] = {"kind": "number", "step": 1 if hint is int else "any"}
        if bounds is not None:
            found["min"], found["max"] = bounds.low, bounds.high
        return {**found, "optional": optional}
    return {"kind": "text", "optional": optional}


def _type_name(hint: Any) -> str:
    """``int``, ``fixed-point|adam``, ``layer numbers|all`` or ``str or none``."""
    if hint is None:
        return "any"
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "|".join(map(str, args))
    if origin is tuple:
        return "numbers"
    if origin in (typing.Union, types.UnionType):
        kinds = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or none" if type(None) in args else "")
    text = getattr(hint, "__name__", None) if not args else None
    return text or str(hint).replace("typing.", "")


def argument_docs(doc: str) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring as ``{name: text}`` (lines joined)."""
    found: dict[str, str] = {}
    inside, current, indent = False, None, None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "Args:":
            inside = True
            continue
        if not inside:
            continue
        if not stripped:
            current = None
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent or (depth == indent and stripped.endswith(":") and " " not in stripped):
            break
        name, colon, rest = stripped.partition(":")
        if depth == indent and colon and name.isidentifier():
            current = name
            found[name] = rest.strip()
        elif current is not None:
            found[current] += " " + stripped
    return found


parse_setting = settings.parse_setting


def providers(output: str) -> str:
    """How to get an optional output (``parts``, ``units``): "method='X' with Y" for each."""
    return outputs.provided_by(output)


def build_method(method: str, raw: dict[str, Any], layers: str | None = None) -> Method:
    """A method instance from raw settings (CLI flags, JSON fields, job arguments) and an
    optional ``--layers`` text: the one way every front end turns text into a method."""
    params = parse_settings(method, raw)
    params.update(parse_layers(method, layers))
    return get_method(method, **params)


def parse_settings(method: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Check and convert settings given as text for ``method`` (see ``settings.parse_settings``)."""
    return settings.parse_settings(METHODS, method, raw)


def parse_layers(method: str, layers: str | None) -> dict[str, Any]:
    """``"all"`` or ``"1,3,6"`` as the ``layers`` setting of ``method`` ({} when not given)."""
    return settings.parse_layers(METHODS, method, layers)


def work_caps() -> dict[str, dict[str, float]]:
    """Each method's settings that scale the work, with the most a shared server allows."""
    return settings.work_caps(METHODS)


def local_settings() -> set[str]:
    """The settings that name a file on this machine (a shared server refuses them)."""
    return settings.local_settings(METHODS)

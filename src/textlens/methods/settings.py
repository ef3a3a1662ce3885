"""Method settings: their valid ranges, declared once on the method, and their parsing from text.

A method's numeric settings are dataclass fields made with ``setting(default, low=..., ...)``.
The range (and the work cap a server applies) lives in the field's metadata, so that the Python
API, the CLI, the server and batch jobs all check a value the same way and say the same thing.
This module imports neither torch nor numpy: the CLI reads it to answer ``--help`` and argument
errors at once.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from textlens.errors import TextlensError

TRUE_WORDS = ("1", "true", "yes", "on", "y", "t")
FALSE_WORDS = ("0", "false", "no", "off", "n", "f")
CLASS_FLAGS = ("name", "signed", "layered")
"""Class attributes of a method that are not settings."""
RESERVED = frozenset(
    {
        # what a user asks for (``textlens.request.Request``'s fields) and its spellings
        "text", "method", "methods", "settings", "target", "target_kind", "contrast", "pair",
        "pooling", "unit", "words", "generate", "continuation", "sample", "chat", "system",
        "prompt_only", "max_length", "truncate", "documents", "template", "max_memory",
        # the commands' own options (explain, explain-file, evaluate, serve)
        "model", "model_path", "html", "html_path", "png", "png_path", "json", "json_path",
        "device", "out", "output", "input_path", "column", "id_column", "batch_size",
        "encoding", "quiet", "engine", "address", "workers", "gpus_per_worker", "block_rows",
        "data", "label_column", "n", "removal", "naopc", "out_dir", "layer_analysis", "layer_n",
        "host", "port", "max_chars", "queue", "time_limit", "max_new_tokens", "allowed_hosts",
        "docs_url", "threads", "help", "version", "as_json", "dtype", "tokenizer",
        # the server's fields
        "params", "heatmap", "layer",
    }
)  # fmt: skip
"""Names a method setting cannot have: every front end takes a method's settings beside its own
options and fields, so a setting with one of these names would be taken by the front end
(``layers`` is the one shared on purpose: every layered method's ``--layers``)."""
RESERVED_METHODS = frozenset({"random", "all"})
"""Method names the evaluation keeps for itself (its random baseline; every method)."""


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts.

    Attributes:
        low, high: Bounds; None = unbounded on that side.
        low_open, high_open: The bound itself is excluded.
        cap: The most a shared server lets one request ask for (the setting scales the work).
        unit: What the number counts, for messages (``"sentences"``).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    cap: float | None = None
    unit: str = ""

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    @property
    def unbounded(self) -> bool:
        return self.low is None and self.high is None

    def describe(self) -> str:
        """``"at least 1"``, ``"above 0"``, ``"between 0 and 1 (both excluded)"``..."""
        text = self._bounds()
        return f"{text} {self.unit}" if self.unit else text

    def _bounds(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            ends = {(True, True): "both excluded", (False, False): "both included"}.get(
                (self.low_open, self.high_open),
                f"{low if self.low_open else high} excluded",
            )
            return f"between {low} and {high} ({ends})"
        if self.low is not None:
            return f"above {low}" if self.low_open else f"at least {low}"
        if self.high is not None:
            return f"below {high}" if self.high_open else f"at most {high}"
        return "finite"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def setting(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    cap: float | None = None,
    unit: str = "",
    local: bool = False,
) -> Any:
    """A method setting with its valid range (a dataclass field).

    ``local`` marks a setting that names a file on this machine: a shared server refuses it.
    """
    bounds = Range(low, high, low_open, high_open, cap, unit)
    return dataclasses.field(default=default, metadata={"range": bounds, "local": local})


def local_settings(methods: dict[str, type]) -> set[str]:
    """Settings across ``methods`` that name a file on this machine (``setting(local=True)``)."""
    return {
        f.name
        for cls in methods.values()
        for f in dataclasses.fields(cls)
        if f.metadata.get("local")
    }


def range_of(cls: Any, name: str) -> Range | None:
    """The declared range of setting ``name`` of a method class, if any."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get("range")
    return None


def work_caps(methods: dict[str, type]) -> dict[str, dict[str, float]]:
    """Every method's capped settings with their caps: ``{method: {setting: cap}}``.

    Caps belong to a method's own setting: two methods may give one name different caps
    (SmoothGrad's ``n_samples`` and LIME's count different things).
    """
    caps: dict[str, dict[str, float]] = {}
    for name, cls in sorted(methods.items()):
        for f in dataclasses.fields(cls):
            bounds = f.metadata.get("range")
            if bounds is not None and bounds.cap is not None:
                caps.setdefault(name, {})[f.name] = bounds.cap
    return caps


def check_value(method: str, name: str, hint: Any, bounds: Range | None, value: Any) -> None:
    """Refuse a setting value of the wrong type or outside its range (one line)."""
    expected = _type_error(hint, value)
    if expected:
        raise TextlensError(f"{name}={value!r} is not valid for {method}: it takes {expected}")
    if bounds is None or value is None or isinstance(value, bool):
        return
    if isinstance(value, int | float) and not bounds.contains(float(value)):
        raise TextlensError(
            f"{name}={value!r} is out of range for {method}: it must be {bounds.describe()}"
        )


def check_method(instance: Any) -> None:
    """Check every setting of a method instance against its type and declared range."""
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        check_value(
            instance.name,
            f.name,
            hints.get(f.name),
            f.metadata.get("range"),
            getattr(instance, f.name),
        )


def _type_error(hint: Any, value: Any) -> str | None:
    """What ``hint`` takes, when ``value`` is not of it; None when it is."""
    if hint is None or hint is Any:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return None if value in args else "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        problems = [_type_error(k, value) for k in kinds]
        if any(p is None for p in problems):
            return None
        text = " or ".join(p for p in problems if p)
        return text + (" or none" if type(None) in args else "")
    if origin is tuple:
        if isinstance(value, tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return None
        return "a tuple of whole numbers"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a text"
    return None


def parse_setting(hint: Any, raw: str) -> Any:
    """Convert a string (a command-line flag, a form field) to a setting of type ``hint``.

    Raises:
        ValueError: the text is not a value of that type (the message says what is accepted).
    """
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        if raw not in args:
            raise ValueError(f"{raw!r} is not one of: {', '.join(map(str, args))}")
        return raw
    non_none = [a for a in args if a is not type(None)] or [hint]
    if raw.strip().lower() in ("none", "all") and type(None) in args:
        return None
    kind = non_none[0]
    if typing.get_origin(kind) is tuple:
        return tuple(int(v) for v in raw.split(",") if v.strip())
    if typing.get_origin(kind) is typing.Literal:
        return parse_setting(kind, raw)
    if kind is bool:
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("use true or false (also yes/no, on/off, 1/0)")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError("use a whole number") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError("use a number") from None
    return kind(raw)


def parse_settings(methods: dict[str, type], method: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Check and convert settings given as text for ``method``: one clear error per mistake.

    Values that are not strings (JSON numbers, booleans, lists) are read as their text form.
    Each value is checked against the setting's declared range.
    """
    cls = known_method(methods, method)
    hints = typing.get_type_hints(cls)
    params = {}
    for name, value in raw.items():
        flag = "--" + name.replace("_", "-")
        if name not in hints or name in CLASS_FLAGS:
            raise TextlensError(f"{flag} is not a setting of {method!r} (see `textlens methods`)")
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        elif value is None:
            value = "none"
        elif isinstance(value, bool):
            value = str(value).lower()
        elif not isinstance(value, str):
            value = str(value)
        try:
            parsed = parse_setting(hints[name], value)
        except ValueError as error:
            raise TextlensError(f"bad value {value!r} for {flag}: {error}") from error
        bounds = range_of(cls, name)
        number = isinstance(parsed, int | float) and not isinstance(parsed, bool)
        if bounds is not None and number and not bounds.contains(float(parsed)):
            raise TextlensError(f"bad value {value!r} for {flag}: it must be {bounds.describe()}")
        params[name] = parsed
    return params


def known_method(methods: dict[str, type], method: str) -> type:
    """The class of a registered method; the one "unknown method" message otherwise."""
    cls = methods.get(method)
    if cls is None:
        raise TextlensError(f"unknown method {method!r}; available: {', '.join(sorted(methods))}")
    return cls


def parse_layers(methods: dict[str, type], method: str, layers: str | None) -> dict[str, Any]:
    """``"all"`` or ``"1,3,6"`` as the ``layers`` setting of ``method`` ({} when not given)."""
    if layers is None:
        return {}
    with_layers = sorted(
        n for n, c in methods.items() if "layers" in {f.name for f in dataclasses.fields(c)}
    )
    if method not in with_layers:
        raise TextlensError(
            f"--layers applies to {', '.join(with_layers)}; {method!r} has no layers"
        )
    if layers.strip().lower() == "all":
        return {"layers": "all"}
    try:
        return {"layers": tuple(int(v) for v in layers.split(",") if v.strip())}
    except ValueError as error:
        raise TextlensError(
            f"--layers takes 'all' or numbers like 1,3,6, not {layers!r}"
        ) from error

"""The ``textlens`` command: thin layers over explain, render and evaluate.

Every user mistake ends with one line on stderr starting with ``error:`` and exit code 2.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import typing
import warnings
from pathlib import Path
from typing import Any

import click

from textlens.errors import TextlensError, one_line

EXIT_USAGE = 2


def _fail(message: str) -> None:
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(EXIT_USAGE)


def _guarded(fn: Any) -> Any:
    """Turn textlens errors (and missing files) into one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TextlensError as error:
            _fail(str(error))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _method_fields() -> dict[str, tuple[Any, Any]]:
    """Every method setting across the registry: name -> (type hint, default of first owner)."""
    from textlens.methods import METHODS

    seen: dict[str, tuple[Any, Any]] = {}
    for cls in METHODS.values():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            seen.setdefault(f.name, (hints[f.name], f.default))
    return seen


def _parse_value(hint: Any, raw: str) -> Any:
    """Convert a command-line string to a method setting of type ``hint``."""
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
        return _parse_value(kind, raw)
    if kind is bool:
        return raw.lower() in ("1", "true", "yes", "on")
    return kind(raw)


def _method_options(fn: Any) -> Any:
    """Add one ``--flag`` per method setting (read from the dataclasses) to a command."""
    for name, (hint, _default) in sorted(_method_fields().items(), reverse=True):
        flag = "--" + name.replace("_", "-")
        fn = click.option(
            flag,
            name,
            default=None,
            metavar="VALUE",
            help=f"method setting {name} ({_describe_hint(hint)})",
        )(fn)
    return fn


def _describe_hint(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "|".join(map(str, typing.get_args(hint)))
    return str(getattr(hint, "__name__", hint)).replace("typing.", "")


def _collect_params(method: str, raw: dict[str, str | None]) -> dict[str, Any]:
    from textlens.methods import METHODS

    given = {k: v for k, v in raw.items() if v is not None}
    cls = METHODS.get(method)
    if cls is None:
        raise TextlensError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    hints = typing.get_type_hints(cls)
    params = {}
    for name, value in given.items():
        if name not in hints or name in ("name", "signed", "layered"):
            flag = "--" + name.replace("_", "-")
            raise TextlensError(f"{flag} is not a setting of {method!r} (see `textlens methods`)")
        try:
            params[name] = _parse_value(hints[name], value)
        except ValueError as error:
            raise TextlensError(
                f"bad value {value!r} for --{name.replace('_', '-')}: {error}"
            ) from error
    return params


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="textlens")
def main() -> None:
    """Explain what NLP models do: which input words a prediction depends on, layer by layer."""


@main.command()
@click.argument("text")
@click.option("--model", "model_path", default=None, help="model folder (default: demo classifier)")
@click.option(
    "--method", default="integrated-gradients", show_default=True, help="see `textlens methods`"
)
@click.option("--target", default=None, help="class label or index (default: predicted class)")
@click.option("--words", is_flag=True, help="merge sub-words into words")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="write the explanation as JSON"
)
@click.option("--max-length", type=int, default=None, help="keep at most this many tokens")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
@_method_options
@_guarded
def explain(
    text: str,
    model_path: str | None,
    method: str,
    target: str | None,
    words: bool,
    json_path: str | None,
    max_length: int | None,
    device: str,
    **settings: str | None,
) -> None:
    """Explain TEXT: print the prediction and each token's score."""
    params = _collect_params(method, settings)
    if not text.strip():
        raise TextlensError("the text is empty: give at least one word to explain")
    if json_path:
        _check_writable(Path(json_path))
    from textlens.adapters.hf import load_model
    from textlens.pipeline import explain as run

    adapter = load_model(model_path, device=device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp = run(text, adapter, method, target, max_length=max_length, **params)
    for w in caught:
        click.echo(f"warning: {one_line(str(w.message))}", err=True)
    _print_prediction(adapter, exp)
    shown = exp.to_words() if words else exp
    _print_scores(shown)
    if json_path:
        _write_atomic(Path(json_path), shown.to_json(indent=2) + "\n")
        click.echo(f"wrote {json_path}")


def _print_prediction(adapter: Any, exp: Any) -> None:
    t = exp.target
    if adapter.task == "sequence-classification":
        probs = adapter.class_probabilities(exp.text)
        listing = "  ".join(f"{name} {p:.3f}" for name, p in probs.items())
        predicted = max(probs, key=probs.get)
        click.echo(f"prediction: {predicted}   ({listing})")
        click.echo(f"explaining: {t.label} ({t.kind}, model score {t.score:.3f})")
    else:
        detail = f" {t.label}" if t.label is not None else ""
        click.echo(f"explaining: {t.kind}{detail}  (model score {t.score:.3f})")


def _print_scores(exp: Any) -> None:
    params = ", ".join(f"{k}={v}" for k, v in exp.params.items() if k != "word_reduce")
    click.echo(f"method: {exp.method}" + (f" ({params})" if params else ""))
    if exp.layered and exp.layers:
        rows = [(f"layer {v}", exp.scores[i]) for i, v in enumerate(exp.layers)]
    else:
        rows = [("", exp.scores)]
    for label, row in rows:
        cells = "  ".join(f"{tok}:{val:+.3f}" for tok, val in zip(exp.tokens, row, strict=True))
        click.echo(f"{label + ': ' if label else ''}{cells}")
    delta = exp.extras.get("convergence_delta")
    if delta is not None:
        click.echo(f"convergence delta: {float(delta):+.2e}")


def _check_writable(path: Path) -> None:
    """Refuse an output path in a missing folder before any work is done."""
    if not path.parent.exists():
        raise TextlensError(f"folder {path.parent} does not exist: create it first")


def _write_atomic(path: Path, content: str) -> None:
    """Write a file through a temporary sibling and a rename: never a half-written file."""
    _check_writable(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(path)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print as JSON")
def methods(as_json: bool) -> None:
    """List every method with its settings and defaults."""
    from textlens.methods import describe_methods

    described = describe_methods()
    if as_json:
        click.echo(json.dumps(described, indent=2, default=str))
        return
    for m in described:
        kind = ("signed" if m["signed"] else "unsigned") + (
            ", layer x token" if m["layered"] else ""
        )
        click.echo(f"{m['name']}  [{kind}]  {m['summary']}")
        for p in m["params"]:
            click.echo(
                f"    --{p['name'].replace('_', '-')}  {p['type']}  (default: {p['default']})"
            )


if __name__ == "__main__":  # pragma: no cover
    main()

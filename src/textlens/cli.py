"""The ``textlens`` command: thin layers over explain, render and evaluate.

Every user mistake ends with one line on stderr starting with ``error:`` and exit code 2.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import typing
import warnings
from pathlib import Path
from typing import Any

import click

from textlens import progress
from textlens.errors import TextlensError, one_line
from textlens.methods import DEFAULT_METHOD
from textlens.text import check_unicode

EXIT_USAGE = 2


def _fail(message: str) -> None:
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(EXIT_USAGE)


def _guarded(fn: Any) -> Any:
    """Turn textlens errors and OS errors (a file that cannot be written) into one line, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TextlensError as error:
            _fail(str(error))
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            _fail(f"{where}{error.strerror or error}")
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


class _Group(click.Group):
    """The command group; a usage mistake (a bad flag or value) prints one ``error:`` line."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as error:
            hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
            _fail(error.format_message() + hint)
        except click.ClickException as error:
            _fail(error.format_message())
        except click.Abort:
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


def _method_fields() -> dict[str, tuple[Any, Any]]:
    """Every method setting across the registry: name -> (type hint, default of first owner)."""
    from textlens.methods import METHODS

    seen: dict[str, tuple[Any, Any]] = {}
    for cls in METHODS.values():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            seen.setdefault(f.name, (hints[f.name], f.default))
    return seen


_UNIT_OPTION = click.option(
    "--unit",
    type=click.Choice(["token", "word", "sentence"]),
    default=None,
    help="score sub-word tokens (default), words or sentences (each method's own reduction, "
    "stated in the output)",
)


def _method_options(fn: Any) -> Any:
    """Add one ``--flag`` per method setting (read from the dataclasses) to a command."""
    for name, (hint, _default) in sorted(_method_fields().items(), reverse=True):
        if name == "layers":  # its own option, --layers all|N,...
            continue
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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="textlens")
def main() -> None:
    """Explain what NLP models do: which input words a prediction depends on, layer by layer."""


_MODEL_OPTION = click.option(
    "--model",
    "model_path",
    default=None,
    help="a model folder, or demo (the demo classifier, default), demo-lm (the packaged "
    "SmolLM2-135M-Instruct) or encoder (the packaged all-MiniLM-L6-v2)",
)


@main.command()
@click.argument("text")
@_MODEL_OPTION
@click.option(
    "--method",
    default=DEFAULT_METHOD,
    show_default=True,
    help="see `textlens methods`; several separated by commas",
)
@click.option(
    "--target",
    default=None,
    help="class label or index; a causal LM's next token (text or id) (default: the prediction)",
)
@click.option(
    "--generate",
    type=int,
    default=None,
    help="a causal LM: generate this many tokens after TEXT (greedy) and explain each by the "
    "tokens before it (an output x input matrix)",
)
@click.option(
    "--continuation",
    default=None,
    help="a causal LM: explain this given answer after TEXT, token by token (forced decoding)",
)
@click.option(
    "--sample", type=int, default=None, metavar="SEED", help="with --generate: sample, seeded"
)
@click.option(
    "--chat",
    is_flag=True,
    help="with --generate / --continuation: TEXT is a user message, put into the model's chat "
    "template",
)
@click.option("--system", default=None, help="with --chat: a system message")
@click.option(
    "--prompt-only",
    is_flag=True,
    help="with --generate / --continuation: score the prompt's tokens only; earlier output "
    "tokens stay fixed context (Captum's semantics)",
)
@click.option(
    "--contrast",
    default=None,
    help="a causal LM's foil token: explain log p(--target) - log p(foil), why the target "
    "rather than this (text or id; --target defaults to the most likely token)",
)
@click.option(
    "--pair",
    default=None,
    help="a second text: explain the similarity of the two (both sides) under a sentence "
    "encoder (default model with --pair: the packaged all-MiniLM-L6-v2)",
)
@click.option(
    "--pooling",
    type=click.Choice(["mean", "cls"]),
    default=None,
    help="how --pair texts become one vector (default: mean)",
)
@click.option(
    "--layers",
    default=None,
    help="all, or layer numbers like 1,3,6 (layered methods; default: the method's own, see "
    "`textlens methods`)",
)
@click.option("--words", is_flag=True, help="merge sub-words into words (same as --unit word)")
@_UNIT_OPTION
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="write an HTML page")
@click.option(
    "--png", "png_path", type=click.Path(dir_okay=False), help="write a heatmap (.png or .svg)"
)
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
    generate: int | None,
    continuation: str | None,
    sample: int | None,
    chat: bool,
    system: str | None,
    prompt_only: bool,
    contrast: str | None,
    pair: str | None,
    pooling: str | None,
    layers: str | None,
    words: bool,
    unit: str | None,
    html_path: str | None,
    png_path: str | None,
    json_path: str | None,
    max_length: int | None,
    device: str,
    **settings: str | None,
) -> None:
    """Explain TEXT: print the prediction and each token's score (coloured on a terminal).

    Several methods separated by commas (``--method NAME,NAME``) are explained one after the
    other and written to one report; each setting flag goes to the methods that have it.
    """
    chosen = [m.strip() for m in method.split(",") if m.strip()]
    plans = _plan_methods(chosen, settings, layers)
    unit = _unit(words, unit)
    if not text.strip():
        raise TextlensError("the text is empty: give at least one word to explain")
    check_unicode(text)
    if pair is not None:
        if target not in (None, "similarity"):
            raise TextlensError(f"--pair explains a similarity; leave out --target {target}")
        if not pair.strip():
            raise TextlensError("the --pair text is empty: give a second text to compare with")
        check_unicode(pair)
    elif target == "similarity":
        raise TextlensError("--target similarity needs a second text: add --pair TEXT")
    _check_common(max_length, device)
    for path in (html_path, png_path, json_path):
        if path:
            _check_writable(Path(path))
    if png_path and Path(png_path).suffix.lower() not in (".png", ".svg"):
        raise TextlensError(f"--png needs a .png or .svg file name, not {Path(png_path).name}")
    from textlens.adapters.loading import load_model
    from textlens.pipeline import explain as run

    if pair is not None and model_path is None:
        model_path = "encoder"
    answer = generate is not None or continuation is not None
    if sample is not None and generate is None:
        raise TextlensError("--sample goes with --generate N (a given continuation is not sampled)")
    if pooling is not None and pair is None:
        raise TextlensError("--pooling says how --pair texts become one vector: add --pair TEXT")
    if answer and max_length is not None:
        raise TextlensError(
            "--max-length does not go with --generate / --continuation: the prompt and the "
            "answer are read whole (the model's context is the limit)"
        )
    if answer and unit is not None:
        raise TextlensError(
            "--unit and --words do not go with --generate / --continuation: an answer is "
            "explained token by token"
        )
    if (chat or system is not None) and not answer:
        raise TextlensError("--chat and --system go with --generate N or --continuation TEXT")
    if prompt_only and not answer:
        raise TextlensError("--prompt-only goes with --generate N or --continuation TEXT")
    if system is not None and not chat:
        raise TextlensError("--system is a chat message: add --chat")
    if answer:
        _check_answer_options(generate, continuation, sample, target, contrast, pair)
    adapter = load_model(model_path, device=device)
    if answer:
        _explain_answer(
            text, adapter, plans, generate, continuation, sample, png_path, json_path,
            html_path=html_path, chat=chat, system=system, prompt_only=prompt_only,
        )  # fmt: skip
        return
    chosen_target: Any = target
    if contrast is not None:
        if pair is not None or adapter.task != "causal-lm":
            raise TextlensError(
                "--contrast compares two next tokens of a causal language model; this model is "
                f"a {adapter.task} model (leave out --contrast, or give a causal LM with --model)"
            )
        from textlens.targets import NextTokenTarget

        chosen_target = NextTokenTarget(token=target, contrast=contrast)
    shown_all = []
    for i, (name, params) in enumerate(plans):
        with (
            warnings.catch_warnings(record=True) as caught,
            progress.reporting(_Progress()),
        ):
            warnings.simplefilter("always")
            if pair is None:
                exps = [run(text, adapter, name, chosen_target, max_length=max_length, **params)]
            else:
                from textlens.pipeline import explain_pair

                exps = list(explain_pair(
                    text, pair, adapter, name, pooling=pooling or "mean", max_length=max_length,
                    **params,
                ))  # fmt: skip
        for w in caught:
            click.echo(f"warning: {one_line(str(w.message))}", err=True)
        for k, exp in enumerate(exps):
            if pair is not None:
                side = "first" if k == 0 else "second"
                click.echo(
                    f"explaining: {exp.target.kind} of the pair, {exp.target.score:.4f}; "
                    f"the {side} text's words"
                )
            elif i == 0:
                _print_prediction(adapter, exp)
            elif exp.target.explained:  # a later method that explains something else says so
                click.echo(f"explaining: {exp.target.explained}")
            shown = exp.to_units(unit) if unit else exp
            _print_scores(shown)
            shown_all.append(shown)
    _write_outputs(shown_all, html_path, png_path, json_path)


def _unit(words: bool, unit: str | None) -> str | None:
    """The unit scores are shown in (None: sub-word tokens, as the model sees them)."""
    if words and unit not in (None, "word"):
        raise TextlensError(f"--words means --unit word; give --unit {unit} alone")
    unit = "word" if words else unit
    return None if unit == "token" else unit


class _Progress:
    """Prints a run's cost estimate and progress on standard error: always on a terminal,
    elsewhere only when the run is expected to take longer than ``LONG_RUN`` seconds."""

    LONG_RUN = 10.0

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def __call__(self, message: str, seconds: float | None) -> None:
        if seconds is not None:
            self.shown = self.shown or seconds > self.LONG_RUN
        if self.shown:
            click.echo(message, err=True)


def _plan_methods(
    chosen: list[str], settings: dict[str, str | None], layers: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """Each method with the settings that belong to it; a flag no chosen method has is an error."""
    from textlens.methods import METHODS, build_method, parse_layers, settings_of

    if not chosen:
        raise TextlensError(f"give a method; available: {', '.join(sorted(METHODS))}")
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise TextlensError(
            f"unknown method {unknown[0]!r}; available: {', '.join(sorted(METHODS))}"
        )
    given = {k: v for k, v in settings.items() if v is not None}
    if len(chosen) == 1:
        method = build_method(chosen[0], given, layers)  # every check, before the model loads
        return [(chosen[0], settings_of(method))]
    owned = {m: {f.name for f in dataclasses.fields(METHODS[m])} for m in chosen}
    for name in given:
        if not any(name in fields for fields in owned.values()):
            flag = "--" + name.replace("_", "-")
            raise TextlensError(f"{flag} is not a setting of {', '.join(chosen)}")
    if layers is not None and not any("layers" in f for f in owned.values()):
        parse_layers(chosen[0], layers)  # raises the usual message
    plans = []
    for m in chosen:
        own = {k: v for k, v in given.items() if k in owned[m]}
        method = build_method(m, own, layers if "layers" in owned[m] else None)
        plans.append((m, settings_of(method)))
    return plans


def _write_outputs(
    exps: list[Any], html_path: str | None, png_path: str | None, json_path: str | None
) -> None:
    from textlens import render

    if html_path:
        render.save_html(exps, html_path, title=f"textlens: {exps[0].text[:60]}")
        click.echo(f"wrote {html_path}")
    if png_path:
        drawn = [e for e in exps if e.layered] or exps
        render.save(drawn, png_path, shared=len({e.method for e in drawn}) == 1)
        click.echo(f"wrote {png_path}")
    if json_path:
        body = exps[0].to_json(indent=2) if len(exps) == 1 else render.to_json(exps)
        render.export.write_atomic(Path(json_path), body + "\n")
        click.echo(f"wrote {json_path}")


def _check_answer_options(
    generate: int | None,
    continuation: str | None,
    sample: int | None,
    target: str | None,
    contrast: str | None,
    pair: str | None,
) -> None:
    """Options that do not go with --generate / --continuation, refused before loading."""
    if generate is not None and continuation is not None:
        raise TextlensError("give --generate N or --continuation TEXT, not both")
    if generate is not None and generate < 1:
        raise TextlensError(f"--generate {generate}: generate at least 1 token")
    for flag, value in (("--target", target), ("--contrast", contrast), ("--pair", pair)):
        if value is not None:
            raise TextlensError(
                f"{flag} does not go with --generate / --continuation: each generated token is "
                "its own target"
            )


def _explain_answer(
    text: str,
    adapter: Any,
    plans: list[tuple[str, dict[str, Any]]],
    generate: int | None,
    continuation: str | None,
    sample: int | None,
    png_path: str | None,
    json_path: str | None,
    *,
    html_path: str | None = None,
    chat: bool = False,
    system: str | None = None,
    prompt_only: bool = False,
) -> None:
    """Explain every token of a generated (or given) answer: one matrix per method."""
    from textlens.generation import explain_generation
    from textlens.render.export import write_atomic
    from textlens.render.generation import generation_heatmap, generation_html, generation_text

    results = []
    for name, params in plans:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gen = explain_generation(
                text,
                adapter,
                name,
                generate=generate,
                continuation=continuation,
                sample_seed=sample,
                chat=chat,
                system=system,
                attribute_to="prompt" if prompt_only else "all",
                on_plan=lambda plan: click.echo(f"plan: {plan.describe()}", err=True),
                **params,
            )
        for message in dict.fromkeys(one_line(str(w.message)) for w in caught):
            click.echo(f"warning: {message}", err=True)
        if not results:
            kind = "generated" if generate is not None else "continuation"
            click.echo(f"{kind}: {gen.continuation!r} ({len(gen.output_tokens)} tokens)")
        shown = ", ".join(f"{k}={v}" for k, v in gen.explanations[0].params.items())
        click.echo(f"method: {gen.method}" + (f" ({shown})" if shown else ""))
        click.echo(generation_text(gen))
        results.append(gen)
    if png_path:
        generation_heatmap(results[-1], png_path)
        click.echo(f"wrote {png_path}")
    if html_path:
        write_atomic(Path(html_path), generation_html(results[-1]))
        click.echo(f"wrote {html_path}")
    if json_path:
        body = [g.to_dict() for g in results]
        write_atomic(
            Path(json_path), json.dumps(body[0] if len(body) == 1 else body, indent=2) + "\n"
        )
        click.echo(f"wrote {json_path}")


def _print_prediction(adapter: Any, exp: Any) -> None:
    t = exp.target
    if adapter.task == "sequence-classification":
        known = t.prediction()  # from the explanation's own forward pass
        probs = known[1] if known else adapter.class_probabilities(exp.text)
        listing = "  ".join(f"{name} {p:.3f}" for name, p in probs.items())
        predicted = max(probs, key=probs.get)
        click.echo(f"prediction: {predicted}   ({listing})")
        if t.explained:
            click.echo(f"explaining: {t.explained}")
        else:
            click.echo(f"explaining: {t.label} ({t.kind}, model score {t.score:.3f})")
    elif t.explained:
        click.echo(f"explaining: {t.explained}")
    else:
        shown = t.label if t.label is None or t.label == t.label.strip() else repr(t.label)
        detail = f" {shown}" if t.label is not None else ""
        click.echo(f"explaining: {t.kind}{detail}  (model score {t.score:.3f})")


def _print_scores(exp: Any) -> None:
    from textlens.render import render_terminal
    from textlens.render.notes import unit_note

    params = ", ".join(f"{k}={v}" for k, v in exp.params.items() if k != "word_reduce")
    click.echo(f"method: {exp.method}" + (f" ({params})" if params else ""))
    if exp.level != "subword":
        click.echo(unit_note(exp))
    sys.stdout.flush()
    render_terminal(exp, file=sys.stdout)
    for line in diagnostic_lines(exp):
        click.echo(line)


def diagnostic_lines(exp: Any) -> list[str]:
    """The lines printed after the scores: the method's ``diagnostics``, then the notes."""
    import numpy as np

    from textlens.methods import METHODS
    from textlens.methods.base import describe

    cls = METHODS.get(exp.method)
    lines = []
    for extra, label in describe(cls, "diagnostics") if cls else ():
        value = exp.extras.get(extra)
        if value is None:
            continue
        if value.ndim == 0:
            lines.append(f"{label}: {float(value):+.2e}")
        elif np.issubdtype(value.dtype, np.integer) or np.all(value == np.round(value)):
            lines.append(f"{label}: " + " ".join(str(int(v)) for v in value.ravel()))
        else:
            lines.append(f"{label}: " + " ".join(f"{float(v):.4g}" for v in value.ravel()))
    from textlens.render.notes import baseline_note, layer_notes

    note = baseline_note(exp)
    return lines + ([note] if note else []) + layer_notes(exp)


def _check_writable(path: Path) -> None:
    """Refuse an output file that cannot be written, before any work is done."""
    folder = path.parent
    if not folder.exists():
        raise TextlensError(f"folder {folder} does not exist: create it first")
    if not folder.is_dir():
        raise TextlensError(f"{folder} is not a folder: choose another output path")
    if path.is_dir():
        raise TextlensError(f"{path} is a folder: give a file name")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TextlensError(f"folder {folder} is not writable: choose another output path")


def _check_output_folder(folder: Path) -> None:
    """Refuse an output folder that cannot be made or written (it is made later, parents too)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise TextlensError(f"{existing} is not a folder: choose another output folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TextlensError(f"folder {existing} is not writable: choose another output folder")


def _check_common(max_length: int | None, device: str | None) -> None:
    """Settings shared by the commands, checked before the model loads."""
    from textlens.devices import check_device_name

    if max_length is not None and max_length < 1:
        raise TextlensError(f"--max-length must be at least 1 token, not {max_length}")
    if device is not None:
        check_device_name(device)


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
            valid = f"  {p['range']}" if p.get("range") else ""
            click.echo(
                f"    --{p['name'].replace('_', '-')}  {p['type']}  (default: {p['default']})"
                + valid
            )
            if p["help"]:
                click.echo(f"        {p['help']}")


@main.command("explain-file")
@click.argument("input_path", metavar="INPUT")
@click.option(
    "--out",
    "output",
    required=True,
    help="output file: .jsonl or .parquet (--engine ray: a folder of Parquet shards)",
)
@_MODEL_OPTION
@click.option("--method", default=DEFAULT_METHOD, show_default=True, help="see `textlens methods`")
@click.option(
    "--target",
    default=None,
    help="class label or index; a causal LM's next token (text or id) (default: the prediction)",
)
@click.option(
    "--layers",
    default=None,
    help="all, or layer numbers like 1,3,6 (layered methods; default: the method's own, see "
    "`textlens methods`)",
)
@click.option("--words", is_flag=True, help="store word-level explanations (same as --unit word)")
@_UNIT_OPTION
@click.option("--column", default="text", show_default=True, help="text field of .jsonl / .csv")
@click.option("--id-column", default=None, help="field holding a row id (default: row number)")
@click.option("--batch-size", type=int, default=16, show_default=True, help="texts per batch")
@click.option("--max-length", type=int, default=None, help="keep at most this many tokens")
@click.option(
    "--encoding", default="utf-8", show_default=True, help="the input file's text encoding"
)
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this process; ray: a pool of Ray workers (--out is then a folder of Parquet "
    "shards)",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster to join (default: RAY_ADDRESS, else start Ray here)",
)
@click.option("--workers", type=int, default=None, help="Ray workers (default: by CPUs / GPUs)")
@click.option(
    "--gpus-per-worker", type=float, default=0.0, show_default=True, help="GPUs per Ray worker"
)
@click.option(
    "--block-rows",
    type=int,
    default=None,
    help="rows per Ray block, the unit of work and of resumption (default: about 64 blocks, "
    "from one batch to 256 rows)",
)
@_method_options
@_guarded
def explain_file(
    input_path: str,
    output: str,
    model_path: str | None,
    method: str,
    target: str | None,
    layers: str | None,
    words: bool,
    unit: str | None,
    column: str,
    id_column: str | None,
    batch_size: int,
    max_length: int | None,
    encoding: str,
    quiet: bool,
    engine: str,
    address: str | None,
    workers: int | None,
    gpus_per_worker: float,
    block_rows: int | None,
    **settings: str | None,
) -> None:
    """Explain every text of INPUT (.txt a line each, .jsonl, .csv, .parquet; or a folder or
    glob of them) into --out, resumably.

    Stopped by Ctrl-C or a kill, the same command carries on where it stopped. With --engine ray
    the work is spread over Ray workers (on this machine, or on the cluster at --address).
    """
    from textlens.jobs import explain_file as run_job
    from textlens.methods import parse_layers, parse_settings

    params = parse_settings(method, {k: v for k, v in settings.items() if v is not None})
    params.update(parse_layers(method, layers))
    chosen_unit = _unit(words, unit)
    if batch_size < 1:
        raise TextlensError("--batch-size must be at least 1")
    _check_common(max_length, None)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = run_job(
                input_path,
                output,
                model=model_path,
                method=method,
                target=target,
                params=params,
                words=chosen_unit or False,
                column=column,
                id_column=id_column,
                batch_size=batch_size,
                max_length=max_length,
                encoding=encoding,
                progress=not quiet,
                engine=engine,
                address=address,
                workers=workers,
                gpus_per_worker=gpus_per_worker,
                block_rows=block_rows,
            )
        said = [one_line(str(w.message)) for w in caught if issubclass(w.category, UserWarning)]
        for message in dict.fromkeys(said):  # each batch may warn alike: say it once
            click.echo(f"warning: {message}", err=True)
    except KeyboardInterrupt:
        click.echo(
            f"interrupted: the rows done so far are saved; run the same command again to carry on "
            f"({output})",
            err=True,
        )
        sys.exit(130)
    finally:
        if engine == "ray":
            from textlens import cluster

            cluster.stop()
    resumed = f", {summary.done_before} done earlier" if summary.done_before else ""
    click.echo(
        f"wrote {summary.output}: {summary.total} rows, {summary.explained} explained, "
        f"{summary.failed} failed{resumed}"
    )


@main.command()
@_MODEL_OPTION
@click.option(
    "--data",
    default=None,
    help=".txt, .jsonl, .csv or .parquet file (or folder) of texts (default: Rotten Tomatoes test)",
)
@click.option("--column", default="text", show_default=True, help="text field of --data")
@click.option("--label-column", default=None, help="label field of --data (reports accuracy)")
@click.option("--n", "n", type=int, default=200, show_default=True, help="texts (the first N)")
@click.option(
    "--methods", default="all", show_default=True, help="comma-separated names, or all (+ random)"
)
@click.option(
    "--target", default=None, help="class or next token to follow (default: the prediction)"
)
@click.option(
    "--unit",
    type=click.Choice(["token", "word", "sentence"]),
    default="token",
    show_default=True,
    help="what the removal metrics remove (a word or sentence with all its pieces)",
)
@click.option(
    "--removal",
    type=click.Choice(["delete", "mask"]),
    default="delete",
    show_default=True,
    help="how tokens are removed",
)
@click.option(
    "--naopc/--no-naopc",
    default=True,
    show_default=True,
    help="find each text's AOPC bounds and report normalised AOPC",
)
@click.option(
    "--out", "out_dir", default="out/evaluation", show_default=True, help="folder (made if missing)"
)
@click.option(
    "--layer-analysis",
    "layer_n",
    type=int,
    default=0,
    show_default=True,
    help="also run the information method over all layers on this many sentences",
)
@click.option("--seed", type=int, default=0, show_default=True, help="random baseline, bootstrap")
@click.option("--quiet", is_flag=True, help="no progress bars")
@_guarded
def evaluate(
    model_path: str | None,
    data: str | None,
    column: str,
    label_column: str | None,
    n: int,
    methods: str,
    target: str | None,
    unit: str,
    removal: str,
    naopc: bool,
    out_dir: str,
    layer_n: int,
    seed: int,
    quiet: bool,
) -> None:
    """Compare methods on your model and data (default: the demo classifier on Rotten Tomatoes):
    faithfulness table (Markdown), curves (PNG), JSON.

    Ctrl-C keeps the methods that finished: they are written, and the report says it was cut.
    """
    from textlens.evaluate import comparison, layers

    if layer_n < 0:  # checked here: the layer analysis runs after the comparison
        raise TextlensError("--layer-analysis takes a number of sentences: 0 (off) or more")
    if layer_n and data is not None:
        raise TextlensError(
            "--layer-analysis runs on the Rotten Tomatoes sentences: run it without --data"
        )
    out = Path(out_dir)
    _check_output_folder(out)
    chosen: Any = "all" if methods.strip() == "all" else [m.strip() for m in methods.split(",")]
    result = comparison.compare_methods(
        model_path, n, chosen, removal=removal, seed=seed, progress=not quiet, data=data,
        column=column, label_column=label_column, target=target, unit=unit, naopc=naopc,
    )  # fmt: skip
    if not result.methods:
        click.echo("interrupted before any method finished: nothing written", err=True)
        sys.exit(130)
    out.mkdir(parents=True, exist_ok=True)  # after the work: a refused run leaves nothing behind
    written = comparison.write_report(result, out)
    click.echo(comparison.markdown_table(result))
    if result.interrupted:
        click.echo(
            f"interrupted: wrote the {len(result.methods)} method(s) that finished "
            f"({', '.join(result.methods)}) to " + ", ".join(str(p) for p in written),
            err=True,
        )
        sys.exit(130)
    if layer_n:
        summary, exps = layers.layer_analysis(model_path, layer_n, progress=not quiet)
        written += layers.write_layer_analysis(summary, exps, out)
        click.echo(layers.layer_table(summary))
    click.echo("wrote " + ", ".join(str(p) for p in written))


@main.command()
@_MODEL_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", type=int, default=8000, show_default=True, help="port")
@click.option("--max-chars", type=int, default=2000, show_default=True, help="longest text")
@click.option(
    "--queue", type=int, default=64, show_default=True, help="requests that may wait at once"
)
@click.option(
    "--time-limit", type=float, default=60.0, show_default=True, help="seconds per request"
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="causal LMs: most tokens generated (or given as the answer) a request",
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="another host name to answer to (repeatable; '*' answers any)",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="torch threads for the worker",
)
@_guarded
def serve(
    model_path: str | None,
    host: str,
    port: int,
    max_chars: int,
    queue: int,
    time_limit: float,
    max_new_tokens: int,
    device: str,
    allowed_hosts: tuple[str, ...],
    threads: int,
) -> None:
    """A local web page and JSON API over one model (fixed at start-up).

    With a causal LM (e.g. --model demo-lm) the page can also generate an answer (or take one)
    and show, for each of its tokens, which tokens before it it depends on.

    Only requests for the loopback names (and --allowed-host names, and the bound address)
    are answered, so that other web sites cannot reach the API through DNS rebinding.
    """
    import uvicorn

    from textlens.adapters.loading import load_model
    from textlens.server.app import Limits, create_app
    from textlens.server.guard import LOOPBACK

    _check_common(None, device)
    if host not in LOOPBACK:
        click.echo(
            f"warning: serving on {host}: anyone who can reach it can run the model", err=True
        )
    names = (*LOOPBACK, *allowed_hosts)
    if host not in ("0.0.0.0", "::", ""):
        names = (*names, host)
    adapter = load_model(model_path, device=device)
    limits = Limits(
        max_chars=max_chars,
        queue=queue,
        time_limit=time_limit,
        allowed_hosts=names,
        threads=threads,
        max_new_tokens=max_new_tokens,
    )
    app = create_app(adapter, limits)
    click.echo(f"textlens: {adapter.name} on http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":  # pragma: no cover
    main()

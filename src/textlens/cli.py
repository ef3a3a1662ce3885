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
            flagged = getattr(error, "flagged", None)  # a request's fields, named as flags
            _fail(flagged() if callable(flagged) else str(error))
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


_DTYPE_OPTION = click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default=None,
    help="load the model's weights in this dtype (default: as saved; float32 for the packaged "
    "models); the methods compute in float32",
)

_MODEL_OPTION = click.option(
    "--model",
    "model_path",
    default=None,
    help="a model folder, or demo (the demo classifier, default), demo-lm (the packaged "
    "SmolLM2-135M-Instruct) or encoder (the packaged all-MiniLM-L6-v2)",
)

REQUEST_OPTIONS = [
    click.option(
        "--method",
        default=DEFAULT_METHOD,
        show_default=True,
        help="see `textlens methods`; several separated by commas",
    ),
    click.option(
        "--target",
        default=None,
        help="class label or index; a causal LM's next token (text or id) (default: the "
        "prediction)",
    ),
    click.option(
        "--target-kind",
        default=None,
        help="what --target names, a kind of `textlens targets` (default: the model's task "
        "decides)",
    ),
    click.option(
        "--contrast",
        default=None,
        help="a causal LM's foil token: explain log p(--target) - log p(foil), why the target "
        "rather than this (text or id; --target defaults to the most likely token)",
    ),
    click.option(
        "--pair",
        default=None,
        help="a second text: explain the similarity of the two (both sides) under a sentence "
        "encoder (default model with --pair: the packaged all-MiniLM-L6-v2)",
    ),
    click.option(
        "--pooling",
        type=click.Choice(["mean", "cls"]),
        default=None,
        help="how --pair texts become one vector (default: mean)",
    ),
    click.option(
        "--generate",
        type=int,
        default=None,
        help="a causal LM: generate this many tokens after TEXT (greedy) and explain each by the "
        "tokens before it (an output x input matrix); an encoder-decoder (T5, BART, Marian): "
        "its output for TEXT, each token by the source and the earlier output tokens",
    ),
    click.option(
        "--continuation",
        default=None,
        help="a causal LM: explain this given answer after TEXT, token by token (forced decoding); "
        "an encoder-decoder: this given output for TEXT (a translation, a summary)",
    ),
    click.option(
        "--sample", type=int, default=None, metavar="SEED", help="with --generate: sample, seeded"
    ),
    click.option(
        "--chat",
        is_flag=True,
        help="with --generate / --continuation: TEXT is a user message, put into the model's "
        "chat template",
    ),
    click.option("--system", default=None, help="with --chat: a system message"),
    click.option(
        "--prompt-only",
        is_flag=True,
        help="with --generate / --continuation: score the prompt's tokens only; earlier output "
        "tokens stay fixed context (Captum's semantics)",
    ),
    click.option(
        "--layers",
        default=None,
        help="all, or layer numbers like 1,3,6 (layered methods; default: the method's own, see "
        "`textlens methods`)",
    ),
    click.option("--words", is_flag=True, help="merge sub-words into words (same as --unit word)"),
    click.option(
        "--unit",
        type=click.Choice(["token", "word", "sentence", "paragraph", "document"]),
        default=None,
        help="score sub-word tokens (default), words, sentences, paragraphs or --document files "
        "(each method's own reduction, stated in the output)",
    ),
    click.option("--max-length", type=int, default=None, help="keep at most this many tokens"),
    click.option(
        "--truncate",
        type=click.Choice(["left", "right"]),
        default=None,
        help="cut a text longer than the model's context: left keeps its end, right its start "
        "(default: a causal LM's text is refused with both lengths)",
    ),
    click.option(
        "--document",
        "documents",
        multiple=True,
        metavar="FILE",
        help="a document TEXT (the question) is asked over (repeat for several): the prompt is "
        "built from them, and --unit document scores each",
    ),
    click.option(
        "--template",
        default=None,
        help="how --document files and the question become the prompt ({documents}, "
        "{question}; default: 'DOCUMENTS\\n\\nQuestion: QUESTION\\nAnswer:')",
    ),
    click.option(
        "--max-memory",
        default=None,
        metavar="SIZE",
        help="memory a run may plan to use, e.g. 16GiB (default: 80% of what is free); batches "
        "shrink and gradient checkpointing is used to stay within it",
    ),
]
"""The options of what a user asks for (a ``Request``): every command that explains has them."""


def _request_options(fn: Any) -> Any:
    """Add the request's options and one ``--flag`` per method setting to a command."""
    for option in reversed(REQUEST_OPTIONS):
        fn = option(fn)
    return _method_options(fn)


def _request(text: Any, fields: dict[str, Any]) -> Any:
    """The Request that a command's request options (popped from ``fields``) ask for; the method
    settings are what is left of ``fields``."""
    from textlens.request import Request

    method, words, unit = fields.pop("method"), fields.pop("words"), fields.pop("unit")
    if words and unit not in (None, "word"):
        raise TextlensError(f"--words means --unit word; give --unit {unit} alone")
    names = ("target", "target_kind", "contrast", "pair", "pooling", "generate", "continuation",
             "sample", "chat", "system", "prompt_only", "layers", "max_length", "truncate",
             "template", "max_memory")  # fmt: skip
    taken = {name: fields.pop(name) for name in names}
    files = fields.pop("documents")
    taken["documents"] = tuple(_read_document(Path(f)) for f in files) if files else None
    settings = {k: v for k, v in fields.items() if v is not None}
    fields.clear()
    return Request(
        text=text, methods=method, settings=settings, unit="word" if words else unit, **taken
    )


@main.command()
@click.argument("text")
@_MODEL_OPTION
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="write an HTML page")
@click.option(
    "--png", "png_path", type=click.Path(dir_okay=False), help="write a heatmap (.png or .svg)"
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="write the explanation as JSON"
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
@_DTYPE_OPTION
@_request_options
@_guarded
def explain(
    text: str,
    model_path: str | None,
    html_path: str | None,
    png_path: str | None,
    json_path: str | None,
    device: str,
    dtype: str | None,
    method: str,
    **fields: Any,
) -> None:
    """Explain TEXT: print the prediction and each token's score (coloured on a terminal).

    Several methods separated by commas (``--method NAME,NAME``) are explained one after the
    other and written to one report; each setting flag goes to the methods that have it. With a
    causal LM or an encoder-decoder, --generate or --continuation explains every token of an
    answer.
    """
    from textlens.adapters.loading import load_model
    from textlens.cli_output import (
        Progress,
        check_outputs,
        show_answers,
        show_explanations,
        write_explanations,
    )

    _check_common(fields.get("max_length"), device)
    request = _request(text, {"method": method, **fields})
    request.check()
    check_outputs(html_path, png_path, json_path)
    model = model_path if model_path is not None or request.pair is None else "encoder"
    adapter = load_model(model, device=device, dtype=dtype)
    with warnings.catch_warnings(record=True) as caught, progress.reporting(Progress()):
        warnings.simplefilter("always")
        outcome = request.run(
            adapter, on_plan=lambda plan: click.echo(f"plan: {plan.describe()}", err=True)
        )
    for message in dict.fromkeys(one_line(str(w.message)) for w in caught):
        click.echo(f"warning: {message}", err=True)
    if outcome.generations:
        show_answers(request, list(outcome.generations), html_path, png_path, json_path)
        return
    exps = list(outcome.explanations)
    show_explanations(request, adapter, exps)
    write_explanations(exps, html_path, png_path, json_path)


def _read_document(path: Path) -> str:
    """A --document file's text (UTF-8), or one line saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TextlensError(f"--document {path} is not UTF-8 text: convert it first") from None
    except OSError as error:
        raise TextlensError(f"--document {path}: {error.strerror or error}") from None


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


@main.command()
def targets() -> None:
    """List every kind of target (what --target-kind names) with the tasks it is for."""
    from textlens.targets import describe_targets

    for t in describe_targets():
        options = f"  options: {', '.join('--' + o for o in t['options'])}" if t["options"] else ""
        click.echo(f"{t['kind']}  [{', '.join(t['tasks'])}]  {t['summary']}{options}")


@main.command("explain-file")
@click.argument("input_path", metavar="INPUT")
@click.option(
    "--out",
    "output",
    required=True,
    help="output file: .jsonl or .parquet (--engine ray: a folder of Parquet shards)",
)
@_MODEL_OPTION
@_DTYPE_OPTION
@click.option("--column", default="text", show_default=True, help="text field of .jsonl / .csv")
@click.option("--id-column", default=None, help="field holding a row id (default: row number)")
@click.option("--batch-size", type=int, default=16, show_default=True, help="texts per batch")
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
@_request_options
@_guarded
def explain_file(
    input_path: str,
    output: str,
    model_path: str | None,
    dtype: str | None,
    column: str,
    id_column: str | None,
    batch_size: int,
    encoding: str,
    quiet: bool,
    engine: str,
    address: str | None,
    workers: int | None,
    gpus_per_worker: float,
    block_rows: int | None,
    method: str,
    **fields: Any,
) -> None:
    """Explain every text of INPUT (.txt a line each, .jsonl, .csv, .parquet; or a folder or
    glob of them) into --out, resumably.

    Every option of `explain` applies to each row (with --generate, each row is a prompt).
    Stopped by Ctrl-C or a kill, the same command carries on where it stopped. With --engine ray
    the work is spread over Ray workers (on this machine, or on the cluster at --address).
    """
    from textlens.jobs import RayOptions
    from textlens.jobs import explain_file as run_job

    _check_common(fields.get("max_length"), None)
    request = _request(None, {"method": method, **fields})
    request.check()
    if batch_size < 1:
        raise TextlensError("--batch-size must be at least 1")
    ray = RayOptions(address, workers, gpus_per_worker, block_rows)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = run_job(
                input_path, output, request, model=model_path, dtype=dtype, column=column,
                id_column=id_column, batch_size=batch_size, encoding=encoding,
                progress=not quiet, engine=engine, ray=ray,
            )  # fmt: skip
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
@_DTYPE_OPTION
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
    "--target-kind", default=None, help="what --target names, a kind of `textlens targets`"
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
    dtype: str | None,
    data: str | None,
    column: str,
    label_column: str | None,
    n: int,
    methods: str,
    target: str | None,
    target_kind: str | None,
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
    from textlens.adapters.loading import load_model

    model: Any = model_path
    if dtype is not None:  # loaded here once, in that dtype (the layer analysis loads its own)
        model = load_model(model_path, dtype=dtype)
    result = comparison.compare_methods(
        model, n, chosen, removal=removal, seed=seed, progress=not quiet, data=data,
        column=column, label_column=label_column, target=target, unit=unit, naopc=naopc,
        target_kind=target_kind,
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
@_DTYPE_OPTION
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
@click.option(
    "--max-memory",
    default=None,
    metavar="SIZE",
    help="memory a request may plan to use, e.g. 8GiB (default: 80% of what is free)",
)
@click.option(
    "--docs-url",
    default=None,
    metavar="URL",
    help="where the documentation site is served (the folder make docs builds): the page "
    "links each method's page there",
)
@_guarded
def serve(
    model_path: str | None,
    dtype: str | None,
    host: str,
    port: int,
    max_chars: int,
    queue: int,
    time_limit: float,
    max_new_tokens: int,
    device: str,
    allowed_hosts: tuple[str, ...],
    threads: int,
    max_memory: str | None,
    docs_url: str | None,
) -> None:
    """A local web page and JSON API over one model (fixed at start-up).

    With a causal LM (e.g. --model demo-lm) the page can also generate an answer (or take one)
    and show, for each of its tokens, which tokens before it it depends on.

    Only requests for the loopback names (and --allowed-host names, and the bound address)
    are answered, so that other web sites cannot reach the API through DNS rebinding.
    """
    try:
        import uvicorn

        from textlens.server.app import Limits, create_app
        from textlens.server.guard import LOOPBACK
    except ImportError as error:
        raise TextlensError(
            f"textlens serve needs the server extra ({error.name} is missing): "
            "pip install 'textlens[server]'"
        ) from None
    from textlens.adapters.loading import load_model
    from textlens.memory import parse_memory

    _check_common(None, device)
    try:
        memory = parse_memory(max_memory)
    except TextlensError as error:
        raise TextlensError(str(error).replace("max_memory", "--max-memory", 1)) from None
    if host not in LOOPBACK:
        click.echo(
            f"warning: serving on {host}: anyone who can reach it can run the model", err=True
        )
    names = (*LOOPBACK, *allowed_hosts)
    if host not in ("0.0.0.0", "::", ""):
        names = (*names, host)
    adapter = load_model(model_path, device=device, dtype=dtype)
    limits = Limits(
        max_chars=max_chars,
        queue=queue,
        time_limit=time_limit,
        allowed_hosts=names,
        threads=threads,
        max_new_tokens=max_new_tokens,
        max_memory=memory,
    )
    if docs_url is not None and not docs_url.startswith(("http://", "https://")):
        raise TextlensError(f"--docs-url is a web address (http://...), not {docs_url!r}")
    app = create_app(adapter, limits, docs_url)
    click.echo(f"textlens: {adapter.name} on http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":  # pragma: no cover
    main()

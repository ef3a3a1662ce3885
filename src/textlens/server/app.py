"""FastAPI app: one page, ``POST /api/explain``, ``GET /api/methods``, ``GET /api/model``.

The model is fixed when the app is made; requests choose a method, a target, layers and method
settings, never a file or a model. Work runs on one worker thread (the model's hooks are not
shared between threads); at most ``queue`` requests wait for it, and each waits at most
``time_limit`` seconds. Every refusal is a 4xx with a one-line ``detail``. Host check, body
limit and security headers: ``textlens.server.guard``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from textlens.errors import TextlensError, one_line
from textlens.methods import DEFAULT_METHOD
from textlens.server.guard import LOOPBACK, Guard, content_security_policy
from textlens.text import check_unicode

POLL_SECONDS = 0.25
"""How often a waiting request looks whether its client is still connected."""


@dataclass(frozen=True)
class Limits:
    """What the server accepts.

    Attributes:
        max_chars: Longest text.
        queue: Requests that may wait for the worker at once.
        time_limit: Seconds a request may wait for its answer.
        max_body: Largest request body, in bytes; None = 8 bytes a character of ``max_chars``
            and 4 KiB more, at least 64 KiB.
        allowed_hosts: Host names answered (``*`` = any); loopback names by default.
        threads: Torch threads of the worker; None leaves torch's choice.
        max_new_tokens: Most tokens a causal LM may generate (or be given as the answer) for
            one request.
    """

    max_chars: int = 2000
    queue: int = 64
    time_limit: float = 60.0
    max_body: int | None = None
    allowed_hosts: tuple[str, ...] = LOOPBACK
    threads: int | None = None
    max_new_tokens: int = 64


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., description="the text to explain")
    method: str = Field(DEFAULT_METHOD, description="a name from GET /api/methods")
    target: str | None = Field(None, description="class label or index; default the prediction")
    layers: str | None = Field(None, description="'all' or layer numbers like '1,3,6'")
    words: bool = Field(False, description="merge sub-words into words (unit 'word')")
    unit: Literal["token", "word", "sentence"] | None = Field(
        None, description="score tokens, words or sentences (each method's own reduction)"
    )
    pair: str | None = Field(
        None,
        description="a second text: explain the similarity of the two texts (both sides) under "
        "the model's mean-pooled output",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="method settings")
    heatmap: bool = Field(True, description="draw the layer x token heatmap (layered methods)")
    generate: int | None = Field(
        None, description="causal LM: generate this many tokens (greedy) and explain each one"
    )
    continuation: str | None = Field(
        None, description="causal LM: explain each token of this answer to the text"
    )
    chat: bool = Field(
        False,
        description="with generate or continuation: the text is a user message, put "
        "into the model's chat template",
    )
    system: str | None = Field(None, description="with chat: a system message")
    prompt_only: bool = Field(
        False, description="with generate or continuation: score the prompt's tokens only"
    )
    layer: int | None = Field(
        None, description="with generate or continuation and a layered method: the layer shown"
    )


class ExplainResponse(BaseModel):
    prediction: dict[str, Any] | None
    explanation: dict[str, Any]
    html: str
    heatmap_png: str | None = Field(None, description="base64 PNG, for layered methods")
    pair_explanation: dict[str, Any] | None = Field(
        None, description="with pair: the second text's explanation"
    )
    generation: dict[str, Any] | None = Field(
        None,
        description="with generate or continuation: the tokens, each output token's colours "
        "over the tokens before it, the step probabilities and the legend",
    )
    seconds: float


def create_app(adapter: Any, limits: Limits | None = None) -> FastAPI:
    """The app for one loaded model (an HFAdapter or anything ``explain`` accepts)."""
    from textlens.methods import METHODS, describe_methods, work_caps

    limits = limits or Limits()
    caps = work_caps()
    app = FastAPI(
        title="textlens",
        version="1",
        description="Explain what an NLP model does: which input words a prediction depends on.",
        docs_url=None,  # Swagger and ReDoc load their scripts from a CDN: nothing from outside
        redoc_url=None,
    )
    if limits.threads is not None:
        import torch

        torch.set_num_threads(limits.threads)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textlens-worker")
    state = {"waiting": 0}
    lock = threading.Lock()
    page = resources.files("textlens.server").joinpath("static/index.html").read_text("utf-8")
    app.add_middleware(
        Guard,
        allowed_hosts=limits.allowed_hosts,
        max_body=limits.max_body or max(65536, 8 * limits.max_chars + 4096),
        policy=content_security_policy(page),
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_validation(error.errors())}, status_code=422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/api/methods")
    def methods() -> list[dict[str, Any]]:
        """Every method with its settings and defaults."""
        return describe_methods()

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        """The model being served, and the request limits."""
        return {
            "name": adapter.name,
            "task": adapter.task,
            "labels": list(adapter.labels or ()),
            "n_layers": adapter.n_layers,
            "default_method": DEFAULT_METHOD,
            "limits": {**limits.__dict__, "work_caps": caps},
        }

    @app.post("/api/explain", response_model=ExplainResponse)
    async def explain(request: ExplainRequest, http: Request) -> ExplainResponse:
        """Explain one text with one method; answers 4xx with a one-line detail on bad input."""
        if not request.text.strip():
            raise HTTPException(422, "the text is empty: give at least one word to explain")
        for what, value in (("text", request.text), ("pair text", request.pair or "")):
            if len(value) > limits.max_chars:
                raise HTTPException(
                    413,
                    f"the {what} has {len(value)} characters; this server takes at most "
                    f"{limits.max_chars}",
                )
        if request.pair is not None and not request.pair.strip():
            raise HTTPException(422, "the pair text is empty: give a second text or leave it out")
        _check_answer(request, adapter, limits)
        if request.method not in METHODS:
            raise HTTPException(
                422, f"unknown method {request.method!r}; available: {', '.join(sorted(METHODS))}"
            )
        params = _settings(request, caps)
        with lock:
            if state["waiting"] >= limits.queue:
                raise HTTPException(
                    429, f"busy: {limits.queue} requests are waiting; try again shortly"
                )
            state["waiting"] += 1
        stop = threading.Event()
        started = threading.Event()
        future = worker.submit(_run, adapter, request, params, stop, started)

        def finished(_: Any) -> None:  # counted until the worker is really free again
            with lock:
                state["waiting"] -= 1

        future.add_done_callback(finished)
        wrapped = asyncio.wrap_future(future)
        deadline = time.monotonic() + limits.time_limit
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                done, _ = await asyncio.wait({wrapped}, timeout=min(POLL_SECONDS, left))
                if done:
                    return wrapped.result()
                if await http.is_disconnected():
                    raise HTTPException(499, "the client closed the connection")
        except TimeoutError as error:
            if not started.is_set():
                raise HTTPException(
                    408,
                    f"the server was busy: the request waited {limits.time_limit:g} s for the "
                    "requests before it and did not start; try again later",
                ) from error
            raise HTTPException(
                408,
                f"the explanation took longer than {limits.time_limit:g} s: "
                "ask for fewer steps or a shorter text",
            ) from error
        except TextlensError as error:
            raise HTTPException(422, one_line(str(error))) from error
        finally:
            if not future.done():  # nobody waits for it any more: stop it at its next step
                stop.set()
                future.cancel()
                wrapped.cancel()

    return app


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """Pydantic's errors as one line that says what to change."""
    fields = ", ".join(ExplainRequest.model_fields)
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        if e.get("type") == "extra_forbidden":
            parts.append(f"unknown field {where!r}: the fields are {fields}")
        elif e.get("type") == "json_invalid":
            parts.append("the body is not valid JSON")
        elif e.get("type") == "missing":
            parts.append(f"field {where!r} is missing")
        else:
            parts.append(f"field {where!r}: {e.get('msg', 'invalid')}")
    return one_line("; ".join(parts) or "the request is not valid")


def _check_answer(request: ExplainRequest, adapter: Any, limits: Limits) -> None:
    """Refuse generation fields that do not fit together or this model, in one line each."""
    answer = request.generate is not None or request.continuation is not None
    if not answer:
        if request.chat or request.system is not None or request.prompt_only:
            raise HTTPException(
                422, "chat, system and prompt_only go with generate or continuation"
            )
        if request.layer is not None:
            raise HTTPException(422, "layer goes with generate or continuation; use layers")
        return
    if adapter.task != "causal-lm":
        raise HTTPException(
            422,
            f"explaining a generated answer needs a causal language model; this server runs a "
            f"{adapter.task} model",
        )
    if request.generate is not None and request.continuation is not None:
        raise HTTPException(422, "give generate or continuation, not both")
    if request.pair is not None or request.target is not None:
        raise HTTPException(
            422, "pair and target do not go with generate: each generated token is its own target"
        )
    if request.system is not None and not request.chat:
        raise HTTPException(422, "system is a chat message: set chat to true")
    prompt = len(request.text) + len(request.system or "")
    if prompt > limits.max_chars:  # the system message is part of the prompt the model reads
        raise HTTPException(
            413,
            f"the text and the system message have {prompt} characters together; this server "
            f"takes at most {limits.max_chars}",
        )
    if request.continuation is not None:
        if not request.continuation.strip():
            raise HTTPException(422, "the continuation is empty: give the answer to explain")
        if len(request.continuation) > limits.max_chars:
            raise HTTPException(
                413,
                f"the continuation has {len(request.continuation)} characters; this server takes "
                f"at most {limits.max_chars}",
            )
        try:
            check_unicode(request.continuation, "the continuation")
        except TextlensError as error:
            raise HTTPException(422, one_line(str(error))) from error
        ids = adapter.tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
        if len(ids) > limits.max_new_tokens:
            raise HTTPException(
                413,
                f"the continuation is {len(ids)} tokens; this server explains answers of at most "
                f"{limits.max_new_tokens} tokens (--max-new-tokens)",
            )
    n = request.generate
    if n is not None and not 1 <= n <= limits.max_new_tokens:
        raise HTTPException(
            422,
            f"generate={n}: this server generates 1 to {limits.max_new_tokens} tokens a request",
        )


def _settings(request: ExplainRequest, caps: dict[str, dict[str, float]]) -> dict[str, Any]:
    from textlens.methods import build_method, local_settings, settings_of

    files = sorted(local_settings() & set(request.params))
    if files:
        raise HTTPException(
            422, f"{files[0]} names a file on the server's machine; this server reads no files"
        )
    try:
        params = settings_of(build_method(request.method, request.params, request.layers))
    except TextlensError as error:
        raise HTTPException(422, one_line(str(error))) from error
    for name, cap in caps.get(request.method, {}).items():
        value = params.get(name)
        if isinstance(value, int | float) and value > cap:
            raise HTTPException(422, f"{name}={value} is more than this server allows ({cap:g})")
    return params


def _run(
    adapter: Any,
    request: ExplainRequest,
    params: dict[str, Any],
    stop: threading.Event,
    started: threading.Event,
) -> ExplainResponse:
    from textlens.cancel import cancellable
    from textlens.pipeline import explain
    from textlens.render import heatmap, render_html

    started.set()
    if request.generate is not None or request.continuation is not None:
        return _run_answer(adapter, request, params, stop)
    began = time.perf_counter()
    other = None
    with warnings.catch_warnings(), cancellable(stop):
        warnings.simplefilter("ignore")
        if request.pair is None:
            exp = explain(request.text, adapter, request.method, request.target, **params)
        else:
            from textlens.pipeline import explain_pair

            if request.target not in (None, "similarity"):
                raise TextlensError("pair explains a similarity: leave the target out")
            exp, other = explain_pair(request.text, request.pair, adapter, request.method, **params)
    unit = request.unit or ("word" if request.words else "token")
    shown = exp.to_units(unit)
    rows = [shown] if other is None else [shown, other.to_units(unit)]
    prediction = None
    if adapter.task == "sequence-classification":
        known = exp.target.prediction()  # from the explanation's own forward pass
        probs = known[1] if known else adapter.class_probabilities(request.text)
        prediction = {"label": max(probs, key=probs.get), "probabilities": probs}
    png = _png(heatmap(shown)) if request.heatmap and shown.layered else None
    return ExplainResponse(
        prediction=prediction,
        explanation=shown.to_dict(),
        html=render_html(rows, standalone=False),
        heatmap_png=png,
        pair_explanation=None if other is None else rows[1].to_dict(),
        seconds=round(time.perf_counter() - began, 4),
    )


def _run_answer(
    adapter: Any, request: ExplainRequest, params: dict[str, Any], stop: threading.Event
) -> ExplainResponse:
    """Explain every token of a generated (or given) answer: the view the page draws, the
    heatmap and the generation's JSON."""
    import html

    from textlens.cancel import cancellable
    from textlens.generation import explain_generation
    from textlens.render.generation import generation_heatmap, generation_text, generation_view

    began = time.perf_counter()
    with warnings.catch_warnings(), cancellable(stop):
        warnings.simplefilter("ignore")
        gen = explain_generation(
            request.text,
            adapter,
            request.method,
            generate=request.generate,
            continuation=request.continuation,
            chat=request.chat,
            system=request.system,
            attribute_to="prompt" if request.prompt_only else "all",
            **params,
        )
    layered = bool(gen.explanations and gen.explanations[0].layered)
    layers = tuple(gen.explanations[0].layers or ()) if layered else ()
    layer = request.layer
    if layer is not None and layer not in layers:
        shown = ", ".join(str(v) for v in layers) or "none: the method is not layered"
        raise TextlensError(f"layer {layer} was not explained; the layers are {shown}")
    if layered and layer is None:
        layer = layers[-1]
    png = _png(generation_heatmap(gen, layer=layer)) if request.heatmap else None
    return ExplainResponse(
        prediction=None,
        explanation=gen.to_dict(),
        html=f'<pre class="tl-listing">{html.escape(generation_text(gen))}</pre>',
        heatmap_png=png,
        generation=generation_view(gen, layer=layer),
        seconds=round(time.perf_counter() - began, 4),
    )


def _png(figure: Any) -> str:
    """A matplotlib figure as base64 PNG, the figure closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")

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
        max_memory: Bytes a request may plan to use (``textlens.memory``); None: a share of
            what is free.
    """

    max_chars: int = 2000
    queue: int = 64
    time_limit: float = 60.0
    max_body: int | None = None
    allowed_hosts: tuple[str, ...] = LOOPBACK
    threads: int | None = None
    max_new_tokens: int = 64
    max_memory: int | None = None


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., description="the text to explain")
    method: str = Field(DEFAULT_METHOD, description="a name from GET /api/methods")
    target: str | None = Field(None, description="class label or index; default the prediction")
    layers: str | None = Field(None, description="'all' or layer numbers like '1,3,6'")
    words: bool = Field(False, description="merge sub-words into words (unit 'word')")
    unit: Literal["token", "word", "sentence", "paragraph", "document"] | None = Field(
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
        None,
        description="causal LM or encoder-decoder: generate this many tokens (greedy) and "
        "explain each one",
    )
    continuation: str | None = Field(
        None,
        description="causal LM or encoder-decoder: explain each token of this answer to the "
        "text (a continuation, a translation, a summary)",
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
    target_kind: str | None = Field(
        None, description="what target names: a kind from GET /api/targets (default: the task's)"
    )
    contrast: str | None = Field(
        None, description="causal LM: a foil token; explains log p(target) - log p(contrast)"
    )
    pooling: Literal["mean", "cls"] | None = Field(
        None, description="with pair: how each text becomes one vector (default mean)"
    )
    sample: int | None = Field(None, description="with generate: sample with this seed")
    max_length: int | None = Field(None, description="keep at most this many tokens")
    truncate: Literal["left", "right"] | None = Field(
        None, description="cut a text longer than the model's context: left keeps its end"
    )
    documents: list[str] | None = Field(
        None, description="documents the text (a question) is asked over; unit 'document'"
    )
    template: str | None = Field(
        None,
        description="how documents and the question become the prompt ({documents}, {question})",
    )


class ExplainResponse(BaseModel):
    prediction: dict[str, Any] | None
    explanation: dict[str, Any]
    html: str
    heatmap_png: str | None = Field(default=None, description="base64 PNG, for layered methods")
    pair_explanation: dict[str, Any] | None = Field(
        default=None, description="with pair: the second text's explanation"
    )
    generation: dict[str, Any] | None = Field(
        default=None,
        description="with generate or continuation: the tokens, each output token's colours "
        "over the tokens before it, the step probabilities and the legend",
    )
    seconds: float


def create_app(adapter: Any, limits: Limits | None = None, docs_url: str | None = None) -> FastAPI:
    """The app for one loaded model (an HFAdapter or anything ``explain`` accepts).

    ``docs_url``: where the documentation site is served; the page links each method there."""
    from textlens.methods import describe_methods, work_caps

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
        return JSONResponse({"detail": describe_validation(list(error.errors()))}, status_code=422)

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
            "docs": None if not docs_url else docs_url.rstrip("/") + "/",
            "limits": {**limits.__dict__, "work_caps": caps},
        }

    @app.get("/api/targets")
    def targets() -> list[dict[str, Any]]:
        """Every kind of target (what target_kind names), with the tasks it is for."""
        from textlens.targets import describe_targets

        return describe_targets()

    @app.post("/api/explain", response_model=ExplainResponse)
    async def explain(request: ExplainRequest, http: Request) -> ExplainResponse:
        """Explain one text with one method; answers 4xx with a one-line detail on bad input."""
        asked = _asked(request, adapter, limits, caps)
        with lock:
            if state["waiting"] >= limits.queue:
                raise HTTPException(
                    429, f"busy: {limits.queue} requests are waiting; try again shortly"
                )
            state["waiting"] += 1
        stop = threading.Event()
        started = threading.Event()
        future = worker.submit(_run, adapter, request, asked, stop, started)

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


def _asked(
    request: ExplainRequest, adapter: Any, limits: Limits, caps: dict[str, dict[str, float]]
) -> Any:
    """The Request a body asks for, after the server's own limits; 4xx with one line."""
    from textlens.request import Request

    if not request.text.strip():
        raise HTTPException(422, "the text is empty: give at least one word to explain")
    prompt = len(request.text) + len(request.system or "") + sum(map(len, request.documents or ()))
    for what, value in (("text", len(request.text)), ("pair text", len(request.pair or ""))):
        if value > limits.max_chars:
            raise HTTPException(
                413,
                f"the {what} has {value} characters; this server takes at most {limits.max_chars}",
            )
    if prompt > limits.max_chars:  # the system message is part of the prompt the model reads
        raise HTTPException(
            413,
            f"the text, its documents and the system message have {prompt} characters "
            f"together; this server takes at most {limits.max_chars}",
        )
    if request.generate is None and request.continuation is None and request.layer is not None:
        raise HTTPException(422, "layer goes with generate or continuation; use layers")
    asked = Request(
        text=request.text, methods=(request.method,), settings=request.params,
        layers=request.layers, target=request.target, target_kind=request.target_kind,
        contrast=request.contrast, pair=request.pair, pooling=request.pooling,
        unit=request.unit or ("word" if request.words else None), generate=request.generate,
        continuation=request.continuation, sample=request.sample, chat=request.chat,
        system=request.system, prompt_only=request.prompt_only, max_length=request.max_length,
        truncate=request.truncate, template=request.template, max_memory=limits.max_memory,
        documents=tuple(request.documents) if request.documents is not None else None,
    )  # fmt: skip
    try:
        _check_settings(request, caps)
        asked.check()
        if asked.answer:
            _check_answer(asked, adapter, limits)
    except TextlensError as error:
        raise HTTPException(422, one_line(str(error))) from error
    return asked


def _check_answer(asked: Any, adapter: Any, limits: Limits) -> None:
    """Refuse an answer this model cannot give or this server does not take, at once."""
    from textlens.generation import GENERATING_TASKS

    if adapter.task not in GENERATING_TASKS:
        raise HTTPException(
            422,
            f"explaining a generated answer needs a causal or encoder-decoder language model; "
            f"this server runs a {adapter.task} model",
        )
    if asked.continuation is not None:
        if len(asked.continuation) > limits.max_chars:
            raise HTTPException(
                413,
                f"the continuation has {len(asked.continuation)} characters; this server takes "
                f"at most {limits.max_chars}",
            )
        ids = adapter.tokenizer(asked.continuation, add_special_tokens=False)["input_ids"]
        if len(ids) > limits.max_new_tokens:
            raise HTTPException(
                413,
                f"the continuation is {len(ids)} tokens; this server explains answers of at most "
                f"{limits.max_new_tokens} tokens (--max-new-tokens)",
            )
    n = asked.generate
    if n is not None and not 1 <= n <= limits.max_new_tokens:
        raise HTTPException(
            422,
            f"generate={n}: this server generates 1 to {limits.max_new_tokens} tokens a request",
        )


def _check_settings(request: ExplainRequest, caps: dict[str, dict[str, float]]) -> None:
    """Settings that name a file, or ask for more work than the server allows, are refused."""
    from textlens.methods import build_method, local_settings, settings_of

    files = sorted(local_settings() & set(request.params))
    if files:
        raise TextlensError(
            f"{files[0]} names a file on the server's machine; this server reads no files"
        )
    params = settings_of(build_method(request.method, request.params, request.layers))
    for name, cap in caps.get(request.method, {}).items():
        value = params.get(name)
        if isinstance(value, int | float) and value > cap:
            raise TextlensError(f"{name}={value} is more than this server allows ({cap:g})")


def _run(
    adapter: Any,
    request: ExplainRequest,
    asked: Any,
    stop: threading.Event,
    started: threading.Event,
) -> ExplainResponse:
    from textlens.cancel import cancellable
    from textlens.render import heatmap, render_html

    started.set()
    began = time.perf_counter()
    with warnings.catch_warnings(), cancellable(stop):
        warnings.simplefilter("ignore")
        outcome = asked.run(adapter)
    if outcome.generations:
        return _answer_response(outcome.generations[0], request, began)
    rows = list(outcome.explanations)
    shown = rows[0]
    prediction = None
    if adapter.task == "sequence-classification" and asked.pair is None:
        known = shown.target.prediction()  # from the explanation's own forward pass
        probs = known[1] if known else adapter.class_probabilities(request.text)
        prediction = {"label": max(probs, key=probs.get), "probabilities": probs}
    png = _png(heatmap(shown)) if request.heatmap and shown.layered else None
    return ExplainResponse(
        prediction=prediction,
        explanation=shown.to_dict(),
        html=render_html(rows, standalone=False),
        heatmap_png=png,
        pair_explanation=rows[1].to_dict() if len(rows) > 1 else None,
        seconds=round(time.perf_counter() - began, 4),
    )


def _answer_response(gen: Any, request: ExplainRequest, began: float) -> ExplainResponse:
    """The view the page draws of a generated (or given) answer, its heatmap and JSON."""
    import html

    from textlens.render.generation import generation_heatmap, generation_text, generation_view

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

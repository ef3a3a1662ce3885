"""FastAPI app: one page, ``POST /api/explain``, ``GET /api/methods``, ``GET /api/model``.

The model is fixed when the app is made; requests choose a method, a target, layers and method
settings, never a file or a model. Work runs on one worker thread (the model's hooks are not
shared between threads); at most ``queue`` requests wait for it, and each waits at most
``time_limit`` seconds. Every refusal is a 4xx with a one-line ``detail``.
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
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from textlens.errors import TextlensError, one_line

# settings that scale the work; a request may not ask for more than this
WORK_CAPS = {"n_steps": 300, "n_samples": 64, "max_steps": 2000, "corpus_size": 2000}


@dataclass(frozen=True)
class Limits:
    max_chars: int = 2000
    queue: int = 64
    time_limit: float = 60.0


class ExplainRequest(BaseModel):
    text: str = Field(..., description="the text to explain")
    method: str = Field("integrated-gradients", description="a name from GET /api/methods")
    target: str | None = Field(None, description="class label or index; default the prediction")
    layers: str | None = Field(None, description="'all' or layer numbers like '1,3,6'")
    words: bool = Field(False, description="merge sub-words into words")
    params: dict[str, Any] = Field(default_factory=dict, description="method settings")
    heatmap: bool = Field(True, description="draw the layer x token heatmap (layered methods)")


class ExplainResponse(BaseModel):
    prediction: dict[str, Any] | None
    explanation: dict[str, Any]
    html: str
    heatmap_png: str | None = Field(None, description="base64 PNG, for layered methods")
    seconds: float


def create_app(adapter: Any, limits: Limits | None = None) -> FastAPI:
    """The app for one loaded model (an HFAdapter or anything ``explain`` accepts)."""
    from textlens.methods import METHODS, describe_methods

    limits = limits or Limits()
    app = FastAPI(
        title="textlens",
        version="1",
        description="Explain what an NLP model does: which input words a prediction depends on.",
    )
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textlens-worker")
    state = {"waiting": 0}
    lock = threading.Lock()
    page = resources.files("textlens.server").joinpath("static/index.html").read_text("utf-8")

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
            "limits": {**limits.__dict__, "work_caps": WORK_CAPS},
        }

    @app.post("/api/explain", response_model=ExplainResponse)
    async def explain(request: ExplainRequest) -> ExplainResponse:
        """Explain one text with one method; answers 4xx with a one-line detail on bad input."""
        if not request.text.strip():
            raise HTTPException(422, "the text is empty: give at least one word to explain")
        if len(request.text) > limits.max_chars:
            raise HTTPException(
                413,
                f"the text has {len(request.text)} characters; this server takes at most "
                f"{limits.max_chars}",
            )
        if request.method not in METHODS:
            raise HTTPException(
                422, f"unknown method {request.method!r}; available: {', '.join(sorted(METHODS))}"
            )
        params = _settings(request)
        with lock:
            if state["waiting"] >= limits.queue:
                raise HTTPException(
                    429, f"busy: {limits.queue} requests are waiting; try again shortly"
                )
            state["waiting"] += 1
        future = worker.submit(_run, adapter, request, params)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), limits.time_limit)
        except asyncio.TimeoutError as error:
            future.cancel()
            raise HTTPException(
                408,
                f"the explanation took longer than {limits.time_limit:g} s: "
                "ask for fewer steps or a shorter text",
            ) from error
        except TextlensError as error:
            raise HTTPException(422, one_line(str(error))) from error
        finally:
            with lock:
                state["waiting"] -= 1

    return app


def _settings(request: ExplainRequest) -> dict[str, Any]:
    from textlens.methods import parse_layers, parse_settings

    try:
        params = parse_settings(request.method, request.params)
        params.update(parse_layers(request.method, request.layers))
    except TextlensError as error:
        raise HTTPException(422, one_line(str(error))) from error
    for name, cap in WORK_CAPS.items():
        value = params.get(name)
        if isinstance(value, int | float) and value > cap:
            raise HTTPException(422, f"{name}={value} is more than this server allows ({cap})")
    return params


def _run(adapter: Any, request: ExplainRequest, params: dict[str, Any]) -> ExplainResponse:
    from textlens.pipeline import explain
    from textlens.render import heatmap, render_html

    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = explain(request.text, adapter, request.method, request.target, **params)
    shown = exp.to_words() if request.words else exp
    prediction = None
    if adapter.task == "sequence-classification":
        probs = adapter.class_probabilities(request.text)
        prediction = {"label": max(probs, key=probs.get), "probabilities": probs}
    png = None
    if request.heatmap and shown.layered:
        import matplotlib.pyplot as plt

        figure = heatmap(shown)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(figure)
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
    return ExplainResponse(
        prediction=prediction,
        explanation=shown.to_dict(),
        html=render_html(shown, standalone=False),
        heatmap_png=png,
        seconds=round(time.perf_counter() - began, 4),
    )

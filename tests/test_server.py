"""The web API in process, and the real server in headless Chromium and under 50 requests."""

import asyncio
import base64
import os
import socket
import subprocess
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import TEXTLENS
from textlens.adapters import HFAdapter
from textlens.server.app import Limits, create_app


@pytest.fixture(scope="module")
def client(tiny_bert):
    return TestClient(create_app(tiny_bert))


def test_methods_model_and_schema(client):
    names = {m["name"] for m in client.get("/api/methods").json()}
    assert {"gradient", "integrated-gradients", "information-loss"} <= names
    model = client.get("/api/model").json()
    assert model["labels"] == ["negative", "positive"] and model["n_layers"] == 2
    schema = client.get("/openapi.json").json()
    assert "/api/explain" in schema["paths"] and "ExplainRequest" in schema["components"]["schemas"]
    page = client.get("/")
    assert page.status_code == 200 and "api/explain" in page.text


def test_explain_flat_and_layered(client):
    r = client.post("/api/explain", json={"text": "a good film", "method": "gradient"})
    body = r.json()
    assert r.status_code == 200 and body["heatmap_png"] is None
    assert body["prediction"]["label"] in ("negative", "positive")
    assert body["explanation"]["schema"] == "textlens.explanation/1"
    assert 'class="tl-tok"' in body["html"]
    r = client.post(
        "/api/explain",
        json={"text": "a <b>good</b> film", "method": "layer-conductance", "layers": "1,2",
              "params": {"n_steps": 4}, "words": True},
    )  # fmt: skip
    body = r.json()
    assert r.status_code == 200, body
    assert base64.b64decode(body["heatmap_png"])[:4] == b"\x89PNG"
    assert body["explanation"]["layers"] == [1, 2] and body["explanation"]["level"] == "word"
    assert "<b>" not in body["html"].split('class="tl-text">', 1)[1]


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"text": "  "}, 422, "the text is empty"),
        ({"text": "x" * 2001}, 413, "at most 2000"),
        ({"text": "ok", "method": "lime"}, 422, "unknown method"),
        ({"text": "ok", "method": "gradient", "params": {"n_steps": 3}}, 422, "not a setting"),
        ({"text": "ok", "params": {"n_steps": 100000}}, 422, "more than this server allows"),
        ({"text": "ok", "params": {"n_steps": "many"}}, 422, "bad value"),
        ({"text": "ok", "method": "attention", "layers": "9"}, 422, "valid: 0..2"),
        ({"text": "ok", "target": "great"}, 422, "valid labels"),
        ({"text": "ok", "model": "/etc/passwd"}, 200, ""),  # unknown fields are ignored
    ],
)
def test_bad_requests_get_a_4xx_with_one_line(client, payload, status, message):
    if "method" not in payload and "params" not in payload:
        payload = {"method": "gradient", **payload}
    r = client.post("/api/explain", json=payload)
    assert r.status_code == status, r.text
    if message:
        detail = r.json()["detail"]
        assert message in detail and "\n" not in detail


class SlowAdapter(HFAdapter):
    """The tiny BERT with a pause in every forward pass (a stand-in for a big model)."""

    def forward(self, *args, **kwargs):
        time.sleep(0.05)
        return super().forward(*args, **kwargs)


def test_busy_and_time_limit(tiny_bert):
    busy = TestClient(create_app(tiny_bert, Limits(queue=0)))
    r = busy.post("/api/explain", json={"text": "ok", "method": "gradient"})
    assert r.status_code == 429 and "busy" in r.json()["detail"]
    paused = SlowAdapter(tiny_bert.model, tiny_bert.tokenizer, name="slow")
    slow = TestClient(create_app(paused, Limits(time_limit=0.5)))
    r = slow.post("/api/explain", json={"text": "a rather long sentence " * 20,
                                        "params": {"n_steps": 300}})  # fmt: skip
    assert r.status_code == 408 and "longer than" in r.json()["detail"]


def test_a_timed_out_request_frees_the_worker(tiny_bert):
    """After a 408 the work nobody waits for stops, so the next request is answered."""
    slow = SlowAdapter(tiny_bert.model, tiny_bert.tokenizer, name="slow")
    client = TestClient(create_app(slow, Limits(time_limit=2.0)))
    long = {"text": "a film", "method": "integrated-gradients",
            "params": {"n_steps": 300, "internal_batch_size": 1}}  # fmt: skip
    r = client.post("/api/explain", json=long)  # 300 passes of 0.05 s: about 15 s of work
    assert r.status_code == 408 and "longer than" in r.json()["detail"]
    r = client.post("/api/explain", json={"text": "a film", "method": "gradient"})
    assert r.status_code == 200, r.json()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_dir):
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [TEXTLENS, "serve", "--model", str(tiny_dir), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/api/model", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail(proc.stderr.read())
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_page_in_headless_chromium(server, tmp_path, chromium):
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    page.goto(server + "/")
    page.wait_for_selector("#method option[value='layer-conductance']", state="attached")
    page.fill("#text", "not a good film, but the cast is <great>")
    page.select_option("#method", "layer-conductance")
    page.fill("#layers", "all")
    page.fill("input[name='n_steps']", "8")
    page.click("#run")
    page.wait_for_selector("#heatmap img", timeout=60_000)
    assert page.locator("#result span.tl-tok").count() >= 2 * 9
    assert page.locator("#prediction").inner_text().startswith("prediction: ")
    assert page.locator("#result great").count() == 0  # the markup stayed text
    assert "<great>" in page.inner_text("#result")
    assert page.evaluate("() => document.querySelector('#heatmap img').naturalWidth") > 200
    page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
    if os.environ.get("TEXTLENS_SCREENSHOT"):
        page.screenshot(path=os.environ["TEXTLENS_SCREENSHOT"], full_page=True)
    page.fill("#text", "")
    page.fill("#text", " ")
    page.click("#run")
    page.wait_for_selector("#status.error")
    assert "the text is empty" in page.inner_text("#status")
    page.close()
    assert (tmp_path / "serve.png").stat().st_size > 10_000


def test_fifty_concurrent_requests_all_answer(server):
    async def main():
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server, timeout=120, limits=limits) as c:
            payload = {"text": "a gripping, beautifully acted film that never lets go",
                       "method": "gradient"}  # fmt: skip
            return await asyncio.gather(*[c.post("/api/explain", json=payload) for _ in range(50)])

    responses = asyncio.run(main())
    codes = [r.status_code for r in responses]
    assert len(codes) == 50 and all(c < 500 for c in codes), codes
    assert codes.count(200) == 50  # the queue (64) holds them all

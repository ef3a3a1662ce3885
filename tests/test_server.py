"""The web API in process, and the real server in headless Chromium and under 50 requests."""

import asyncio
import base64
import contextlib
import os
import re
import socket
import subprocess
import time

import httpx
import pytest

from conftest import TEXTLENS, local_client
from textlens.adapters import HFAdapter
from textlens.server.app import Limits, create_app


@pytest.fixture(scope="module")
def client(tiny_bert):
    return local_client(create_app(tiny_bert))


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
        ({"text": "ok", "method": "no-such-method"}, 422, "unknown method"),
        ({"text": "ok", "method": "gradient", "params": {"n_steps": 3}}, 422, "not a setting"),
        ({"text": "ok", "params": {"n_steps": 100000}}, 422, "more than this server allows"),
        ({"text": "ok", "params": {"n_steps": "many"}}, 422, "bad value"),
        ({"text": "ok", "method": "attention", "layers": "9"}, 422, "valid: 0..2"),
        ({"text": "ok", "target": "great"}, 422, "valid labels"),
        ({"text": "ok", "model": "/etc/passwd"}, 422, "unknown field 'model': the fields are"),
        ({"text": "ok", "words": "maybe"}, 422, "field 'words': Input should be a valid boolean"),
        ({"method": "gradient"}, 422, "field 'text' is missing"),
    ],
)
def test_bad_requests_get_a_4xx_with_one_line(client, payload, status, message):
    if "method" not in payload and "params" not in payload:
        payload = {"method": "gradient", **payload}
    r = client.post("/api/explain", json=payload)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and message in detail and "\n" not in detail


class SlowAdapter(HFAdapter):
    """The tiny BERT with a pause in every forward pass (a stand-in for a big model)."""

    def forward(self, *args, **kwargs):
        time.sleep(0.05)
        return super().forward(*args, **kwargs)


def test_busy_and_time_limit(tiny_bert):
    busy = local_client(create_app(tiny_bert, Limits(queue=0)))
    r = busy.post("/api/explain", json={"text": "ok", "method": "gradient"})
    assert r.status_code == 429 and "busy" in r.json()["detail"]
    paused = SlowAdapter(tiny_bert.model, tiny_bert.tokenizer, name="slow")
    slow = local_client(create_app(paused, Limits(time_limit=0.5)))
    r = slow.post("/api/explain", json={"text": "a rather long sentence " * 20,
                                        "params": {"n_steps": 300}})  # fmt: skip
    assert r.status_code == 408 and "longer than" in r.json()["detail"]


def test_a_timed_out_request_frees_the_worker(tiny_bert):
    """After a 408 the work nobody waits for stops, so the next request is answered."""
    slow = SlowAdapter(tiny_bert.model, tiny_bert.tokenizer, name="slow")
    client = local_client(create_app(slow, Limits(time_limit=2.0)))
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


@contextlib.contextmanager
def serving(model_dir):
    """``textlens serve`` on a free port, as a separate process; yields its URL."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [TEXTLENS, "serve", "--model", str(model_dir), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tiny_dir):
    with serving(tiny_dir) as url:
        yield url


def test_page_in_headless_chromium(server, tmp_path, chromium):
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    page.on("pageerror", lambda e: messages.append(str(e)))
    response = page.goto(server + "/")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page.wait_for_selector("#method option[value='layer-conductance']", state="attached")
    page.fill("#text", "not a good film, but the cast is <great>")
    page.select_option("#method", "layer-conductance")
    page.fill("#layers", "all")
    # each setting is a typed control from its declaration, with its help line
    steps = page.locator("input[name='n_steps']")
    assert steps.get_attribute("type") == "number" and steps.get_attribute("min") == "1"
    baseline = page.locator("select[name='baseline']")
    assert baseline.locator("option").all_inner_texts()[1:] == ["pad", "mask", "unk"]
    assert page.locator("input[name='keep_units']").get_attribute("type") == "checkbox"
    shown = page.inner_text("#settings")
    assert "Path points (n_steps + 1 evaluations" in shown and "at least 1" in shown
    assert not re.search(r"Literal|\| None|\b(int|float|str|bool)\b|``", shown), shown
    assert page.locator("#method-docs").is_hidden()  # no documentation site given
    page.select_option("select[name='baseline']", "mask")
    page.fill("input[name='n_steps']", "8")
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if "api/explain" in r.url else None)
    page.click("#run")
    page.wait_for_selector("#heatmap img", timeout=60_000)
    assert sent and sent[0]["params"] == {"n_steps": 8, "baseline": "mask"}
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
    # the page works under its Content-Security-Policy: nothing was refused, nothing failed
    assert not [m for m in messages if "Content Security Policy" in m or "Refused" in m], messages
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


class PausingAdapter(HFAdapter):
    """The tiny BERT with a 2 s pause before every forward pass (longer than the time limit)."""

    def forward(self, *args, **kwargs):
        time.sleep(2.0)
        return super().forward(*args, **kwargs)


def test_a_request_that_never_started_is_told_the_server_was_busy(tiny_bert):
    import threading

    paused = PausingAdapter(tiny_bert.model, tiny_bert.tokenizer, name="paused")
    client = local_client(create_app(paused, Limits(time_limit=1.0)))
    long = {"text": "a film", "method": "integrated-gradients",
            "params": {"n_steps": 300, "internal_batch_size": 1}}  # fmt: skip
    first = {}
    ahead = threading.Thread(target=lambda: first.update(r=client.post("/api/explain", json=long)))
    ahead.start()
    time.sleep(0.3)
    r = client.post("/api/explain", json={"text": "a film", "method": "gradient"})
    ahead.join()
    assert first["r"].status_code == 408 and "longer than" in first["r"].json()["detail"]
    assert r.status_code == 408 and "the server was busy" in r.json()["detail"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io"])
def test_other_host_names_are_refused(client, host):
    for path in ("/api/model", "/", "/openapi.json"):
        r = client.get(path, headers={"host": host})
        assert r.status_code == 400 and "is not served here" in r.json()["detail"], path
    r = client.post("/api/explain", json={"text": "ok", "method": "gradient"},
                    headers={"host": host})  # fmt: skip
    assert r.status_code == 400


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"])
def test_loopback_names_are_answered(client, host):
    assert client.get("/api/model", headers={"host": host}).status_code == 200


def test_allowed_host_option(tiny_bert):
    app = create_app(tiny_bert, Limits(allowed_hosts=("127.0.0.1", "lab.example")))
    other = local_client(app)
    assert other.get("/api/model", headers={"host": "lab.example:8000"}).status_code == 200
    assert other.get("/api/model", headers={"host": "localhost"}).status_code == 400


def test_security_headers_on_every_response(client):
    responses = [
        client.get("/"),
        client.get("/api/model"),
        client.get("/nope"),
        client.post("/api/explain", json={"text": ""}),
        client.get("/", headers={"host": "evil.example"}),
    ]
    for r in responses:
        policy = r.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "http" not in policy  # nothing from outside
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"


def test_no_pages_that_load_scripts_from_outside(client):
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_request_bodies_are_limited(client):
    huge = '{"text": "ok", "method": "gradient", "junk": "' + "x" * 200_000 + '"}'
    r = client.post("/api/explain", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than this server takes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit counts what arrives
        yield b'{"text": "ok", "junk": "'
        for _ in range(50):
            yield b"x" * 10_000
        yield b'"}'

    r = client.post("/api/explain", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_bodies_that_are_not_json_get_one_line(client):
    r = client.post("/api/explain", content=b"{not json",
                    headers={"content-type": "application/json"})  # fmt: skip
    detail = r.json()["detail"]
    assert r.status_code == 422 and isinstance(detail, str) and "not valid JSON" in detail


def test_a_setting_that_names_a_file_is_refused(client):
    response = client.post(
        "/api/explain",
        json={"text": "fine", "method": "information-loss", "params": {"corpus": "/etc/passwd"}},
    )
    assert response.status_code == 422
    assert "reads no files" in response.json()["detail"]


@pytest.fixture(scope="module")
def lm_client(tiny_lm_dir):
    from textlens.adapters.loading import load_model

    return local_client(create_app(load_model(str(tiny_lm_dir)), Limits(max_new_tokens=6)))


def test_a_causal_lm_explains_each_token_of_its_answer(lm_client):
    assert lm_client.get("/api/model").json()["limits"]["max_new_tokens"] == 6
    r = lm_client.post(
        "/api/explain", json={"text": "The capital of France is", "method": "gradient-x-input",
                              "generate": 3},
    )  # fmt: skip
    body = r.json()
    assert r.status_code == 200, body
    g = body["generation"]
    n_out = len(g["output_tokens"])
    assert 1 <= n_out <= 3 and len(g["tokens"]) == g["n_prompt"] + n_out
    assert len(g["colours"]) == n_out and len(g["probabilities"]) == n_out
    for j, row in enumerate(g["colours"]):  # a row colours the tokens before its token only
        assert all(c == "" for c in row[g["n_prompt"] + j :])
        assert any(c for c in row[: g["n_prompt"] + j])
    assert body["explanation"]["schema"].startswith("textlens.generation/")
    assert base64.b64decode(body["heatmap_png"])[:4] == b"\x89PNG"
    r = lm_client.post(
        "/api/explain",
        json={"text": "The capital of France is", "method": "layer-conductance",
              "continuation": " Paris", "layers": "1,2", "layer": 1, "params": {"n_steps": 4}},
    )  # fmt: skip
    g = r.json()["generation"]
    assert r.status_code == 200 and g["layer"] == 1 and g["output_tokens"][0] == "Paris"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"generate": 0}, "generate at least 1 token"),
        ({"generate": 7}, "1 to 6 tokens"),
        ({"generate": 2, "continuation": " x"}, "not both"),
        ({"continuation": "  "}, "the continuation is empty"),
        ({"generate": 2, "target": "Paris"}, "its own target"),
        ({"chat": True}, "go with generate or continuation"),
        ({"generate": 2, "system": "be brief"}, "is a chat message: set chat"),
        ({"generate": 2, "chat": True}, "no chat template"),
        ({"generate": 2, "layer": 1}, "layer 1 was not explained"),
    ],
)
def test_bad_answer_requests_get_one_line(lm_client, payload, message):
    r = lm_client.post(
        "/api/explain", json={"text": "Hello there", "method": "gradient", **payload}
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert message in detail and "\n" not in detail


def test_a_classifier_server_refuses_to_generate(client):
    r = client.post("/api/explain", json={"text": "a good film", "generate": 3})
    assert r.status_code == 422 and "causal or encoder-decoder language model" in r.json()["detail"]


def test_the_page_shows_what_each_generated_token_depends_on(tiny_lm_dir, chromium):
    with serving(tiny_lm_dir) as url:
        page = chromium.new_page(viewport={"width": 1100, "height": 900})
        messages = []
        page.on("console", lambda m: messages.append(m.text))
        page.on("pageerror", lambda e: messages.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("#answer:not([hidden])")
        assert page.locator("#pair").is_hidden()  # no similarity on a causal LM
        page.select_option("#method", "gradient-x-input")
        page.fill("#generate", "4")
        page.click("#run")
        page.wait_for_selector(".tl-gen .tl-out", timeout=60_000)
        outputs = page.locator(".tl-gen .tl-out").count()
        assert 1 <= outputs <= 4 and page.locator("#heatmap img").count() == 1
        assert page.locator(".tl-steps tr").count() == outputs + 1
        colours = "() => [...document.querySelectorAll('.tl-gen span[data-i]')]" \
            ".map(s => s.style.background)"  # fmt: skip
        page.hover('.tl-gen .tl-out[data-row="0"]')
        first = page.evaluate(colours)
        n_prompt = len(first) - outputs
        assert any(first[1:n_prompt]) and not any(first[n_prompt:])
        if outputs > 1:
            page.hover(f'.tl-gen .tl-out[data-row="{outputs - 1}"]')
            last = page.evaluate(colours)
            assert any(last[n_prompt : n_prompt + outputs - 1]) and not last[-1]
        assert page.locator("#prediction").inner_text().startswith("answer (")
        page.close()
    assert not [m for m in messages if "Content Security Policy" in m or "Refused" in m]
    assert not [m for m in messages if "Error" in m], messages


def test_methods_describe_typed_controls_and_the_page_links_the_docs(tiny_bert):
    listed = {m["name"]: m for m in local_client(create_app(tiny_bert)).get("/api/methods").json()}
    controls = {p["name"]: p["control"] for p in listed["integrated-gradients"]["params"]}
    assert controls["baseline"] == {
        "kind": "choice", "choices": ["pad", "mask", "unk"], "optional": False
    }  # fmt: skip
    assert controls["n_steps"]["kind"] == "number" and controls["n_steps"]["step"] == 1
    assert controls["n_steps"]["min"] == 1 and controls["internal_batch_size"]["optional"]
    assert {p["name"]: p["control"] for p in listed["layer-conductance"]["params"]}[
        "keep_units"
    ] == {"kind": "checkbox", "optional": False}
    model = local_client(create_app(tiny_bert, docs_url="http://localhost:8001")).get("/api/model")
    assert model.json()["docs"] == "http://localhost:8001/"
    assert local_client(create_app(tiny_bert)).get("/api/model").json()["docs"] is None

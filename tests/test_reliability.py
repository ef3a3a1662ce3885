"""Bad input and faults on the newer surfaces: generated answers, memory, options that do nothing,
and work that must stop when its request is gone."""

import dataclasses
import threading
import time
from typing import ClassVar

import pytest
from click.testing import CliRunner

from conftest import SENTENCES, local_client
from textlens import explain
from textlens.cancel import Cancelled, cancellable
from textlens.cli import main
from textlens.errors import TextlensError
from textlens.generation import explain_generation
from textlens.memory import ResourceError
from textlens.server.app import Limits, create_app

PROMPT = "The capital of France is"


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stderr


@pytest.fixture(scope="module")
def lm(tiny_lm_dir):
    from textlens.adapters.loading import load_model

    return load_model(str(tiny_lm_dir))


# -- every method estimates its memory ---------------------------------------------------------
def test_a_method_without_a_memory_estimate_is_refused_at_registration():
    from textlens.methods import METHODS, register
    from textlens.methods.base import Scores

    @dataclasses.dataclass(frozen=True)
    class NoEstimate:
        name: ClassVar[str] = "no-estimate"
        signed: ClassVar[bool] = True
        layered: ClassVar[bool] = False

        def attribute(self, model, batch, target):
            return Scores(model.embed(batch).sum(-1))

    with pytest.raises(TypeError, match="declares no memory_bytes"):
        register(NoEstimate)
    assert "no-estimate" not in METHODS


def test_every_registered_method_estimates_its_memory(tiny_bert):
    from textlens.methods import METHODS, get_method

    batch = tiny_bert.encode(SENTENCES)
    for name in METHODS:
        assert get_method(name).memory_bytes(tiny_bert, batch) > 0, name


def test_the_information_method_is_refused_before_it_allocates(tiny_dir, tiny_bert, tmp_path):
    refused = r"information-loss with n_samples=100000000 needs about .* that fits is \d+"
    with pytest.raises(ResourceError, match=refused):
        explain(SENTENCES[0], tiny_bert, "information-loss", n_samples=10**8)
    code, err = cli("explain", "a film", "--model", tiny_dir, "--method", "information-loss",
                    "--n-samples", 10**8)  # fmt: skip
    assert code == 2 and "the largest n_samples that fits" in err and len(err.splitlines()) == 1
    (tmp_path / "in.txt").write_text("good\nbad\n")
    out = tmp_path / "out.jsonl"
    code, err = cli("explain-file", tmp_path / "in.txt", "--out", out, "--model", tiny_dir,
                    "--method", "information-loss", "--n-samples", 10**8)  # fmt: skip
    assert code == 2 and "needs about" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # refused before it started


# -- generated answers ---------------------------------------------------------------------------
def test_a_method_seed_and_the_sampling_seed_are_apart(lm):
    a = explain_generation(PROMPT, lm, "smoothgrad", generate=2, sample_seed=5, seed=1)
    b = explain_generation(PROMPT, lm, "smoothgrad", generate=2, sample_seed=5, seed=2)
    assert a.token_ids == b.token_ids  # the same sampled answer
    assert a.explanations[0].params["seed"] == 1 and b.explanations[0].params["seed"] == 2
    assert not (a.matrix()[0] == b.matrix()[0]).all()  # the method's own noise differs


def test_a_lone_surrogate_in_the_continuation_or_system(lm, tiny_lm_dir):
    with pytest.raises(TextlensError, match="the continuation is not valid Unicode"):
        explain_generation(PROMPT, lm, "gradient", continuation=" Par\ud800is")
    code, err = cli("explain", PROMPT, "--model", tiny_lm_dir, "--method", "gradient",
                    "--continuation", " Par\ud800is")  # fmt: skip
    assert code == 2 and "the continuation is not valid Unicode" in err
    client = local_client(create_app(lm, Limits()))
    for field in ("continuation", "system"):  # a JSON escape: the body itself is valid UTF-8
        body = (f'{{"text": "{PROMPT}", "method": "gradient", "generate": 1, "chat": true, '
                f'"{field}": " Par\\ud800is"}}')  # fmt: skip
        if field == "continuation":
            body = body.replace('"generate": 1, "chat": true, ', "")
        r = client.post("/api/explain", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "not valid Unicode" in r.json()["detail"], r.text


def test_the_server_counts_the_answer_and_the_system_message(lm):
    client = local_client(create_app(lm, Limits(max_chars=100, max_new_tokens=8)))
    long_answer = " Paris" * 20  # 120 characters would pass a character limit of 200
    r = client.post("/api/explain", json={"text": PROMPT, "method": "gradient",
                                          "continuation": long_answer[:90]})  # fmt: skip
    assert r.status_code == 413 and "at most 8 tokens" in r.json()["detail"]
    r = client.post("/api/explain", json={"text": PROMPT, "method": "gradient", "generate": 1,
                                          "chat": True, "system": "x" * 90})  # fmt: skip
    assert r.status_code == 413 and "system message" in r.json()["detail"]


@pytest.mark.parametrize(("args", "message"), [
    (["--sample", "3"], "--sample goes with --generate"),
    (["--continuation", " Paris", "--sample", "3"], "--sample goes with --generate"),
    (["--generate", "2", "--max-length", "4"], "--max-length does not go with --generate"),
    (["--generate", "2", "--unit", "sentence"], "--unit does not go with --generate"),
    (["--pooling", "cls"], "--pooling says how --pair texts"),
])  # fmt: skip
def test_options_that_would_do_nothing_are_refused(tiny_lm_dir, tmp_path, args, message):
    out = tmp_path / "e.json"
    code, err = cli("explain", PROMPT, "--model", tiny_lm_dir, "--method", "gradient", *args,
                    "--json", out)  # fmt: skip
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_causal_lm_prompt_is_not_cut_silently(lm, tiny_lm_dir):
    with pytest.raises(TextlensError, match=r"the text is \d+ tokens and this causal LM reads at "
                                            r"most 1 here .* does not cut it"):  # fmt: skip
        explain(PROMPT, lm, "gradient", max_length=1)
    code, err = cli("explain", PROMPT, "--model", tiny_lm_dir, "--max-length", "3")
    assert code == 2 and "reads at most 3 here" in err
    batch = lm.encode(
        [PROMPT], max_length=3, truncate="left", warn=False
    )  # asked for: the end is kept
    assert batch.tokens[0][-1] == lm.encode([PROMPT]).tokens[0][-1]


# -- cancelled work stops within one pass --------------------------------------------------------
def test_cancelled_generation_stops_at_the_next_token(lm):
    stop, calls = threading.Event(), []

    def count(module, args, kwargs):
        calls.append(1)
        stop.set()  # cancelled during the first pass of generate

    hook = lm.model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        with cancellable(stop), pytest.raises(Cancelled):
            explain_generation(PROMPT, lm, "gradient", generate=5)
    finally:
        hook.remove()
    assert len(calls) == 1


def test_cancelled_backward_passes_stop_at_the_next_group(lm, monkeypatch):
    import textlens.methods.base as base

    monkeypatch.setattr(base, "BACKWARD_TOKENS", 1)  # one backward pass per output token
    stop, backward = threading.Event(), []

    def hook(module, grad_in, grad_out):
        backward.append(1)
        stop.set()

    handle = lm.layers[0].register_full_backward_hook(hook)
    try:
        with cancellable(stop), pytest.raises(Cancelled):
            explain_generation(PROMPT, lm, "gradient-x-input", continuation=" Paris is big")
    finally:
        handle.remove()
    assert len(backward) == 1


def test_a_timed_out_answer_frees_the_worker(lm, monkeypatch):
    """A 408 on a generated answer stops its work, so the next request is answered."""
    import textlens.methods.base as base

    monkeypatch.setattr(base, "BACKWARD_TOKENS", 1)
    handle = lm.layers[0].register_full_backward_hook(lambda *a: time.sleep(0.3))
    try:
        client = local_client(create_app(lm, Limits(time_limit=1.0, max_new_tokens=64)))
        answer = " Paris is a big city" * 4  # about 20 backward passes of 0.3 s
        r = client.post("/api/explain", json={"text": PROMPT, "method": "gradient-x-input",
                                              "continuation": answer})  # fmt: skip
        assert r.status_code == 408
        r = client.post("/api/explain", json={"text": PROMPT, "method": "occlusion"})
        assert r.status_code == 200, r.json()
    finally:
        handle.remove()

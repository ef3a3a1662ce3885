"""Memory planned, not hoped for: max_memory, gradient checkpointing where only it fits,
batches split to fit, attention read a few rows at a time; the same scores every way."""

import json

import numpy as np
import pytest
import torch
import transformers

from conftest import SENTENCES, run_cli, tiny_model
from textlens import explain_many
from textlens.adapters import HFAdapter
from textlens.errors import TextlensError
from textlens.generation import explain_generation
from textlens.memory import ResourceError, estimate_bytes, memory_limit, parse_memory
from textlens.methods import get_method
from textlens.request import Request

PROMPT = "The capital of France is"
ANSWER = " Paris, a café"


@pytest.fixture(scope="module")
def lm64(byte_tokenizer):
    """A tiny Llama (grouped keys and values) in float64."""
    end = byte_tokenizer.eos_token_id
    config = transformers.AutoConfig.for_model(
        "llama", vocab_size=len(byte_tokenizer), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, intermediate_size=64,
        max_position_embeddings=128, initializer_range=0.5, pad_token_id=end, bos_token_id=end,
        eos_token_id=end,
    )  # fmt: skip
    torch.manual_seed(0)
    decoder = transformers.AutoModelForCausalLM.from_config(config).eval().double()
    return HFAdapter(decoder, byte_tokenizer, name="tiny-llama-64")


@pytest.fixture(scope="module")
def bert64(tokenizer):
    return HFAdapter(tiny_model("bert").double(), tokenizer, name="tiny-bert-64")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(2**30, 2**30), ("16GiB", 16 * 2**30), ("512MB", 512 * 2**20), ("1.5g", int(1.5 * 2**30)),
     (" 2 GiB ", 2 * 2**30), ("300b", 300), (None, None)],
)  # fmt: skip
def test_sizes_parse(given, expected):
    assert parse_memory(given) == expected


@pytest.mark.parametrize("given", ["lots", "16 parsecs", True, "10", -5, 0, [1]])
def test_bad_sizes_are_one_line(given):
    with pytest.raises(TextlensError, match=r"max_memory=.* is not valid: give"):
        parse_memory(given)


@pytest.mark.parametrize("method", ["gradient-x-input", "integrated-gradients"])
def test_checkpointing_gives_the_same_scores(lm64, bert64, method):
    settings = {"n_steps": 4} if method == "integrated-gradients" else {}
    for model, texts in ((lm64, [PROMPT, "a café"]), (bert64, SENTENCES)):
        plain = explain_many(texts, model, method, **settings)
        with model.checkpointed():
            kept = explain_many(texts, model, method, **settings)
        for a, b in zip(plain, kept, strict=True):
            np.testing.assert_allclose(b.scores, a.scores, rtol=1e-5, atol=1e-9)


def test_checkpointing_lowers_the_estimate_and_recomputes_in_the_backward_pass(lm64, monkeypatch):
    method = get_method("integrated-gradients", n_steps=4)
    batch = lm64.encode([PROMPT])
    plain = estimate_bytes(method, lm64, batch)
    calls = []
    block = type(lm64.layers[0])
    forward = block.forward

    def counted(self, *args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(block, "forward", counted)
    with lm64.checkpointed():
        assert lm64.checkpointing
        lower = estimate_bytes(method, lm64, batch)
        explain_many([PROMPT], lm64, method)
    with_checkpoints = len(calls)
    calls.clear()
    explain_many([PROMPT], lm64, method)
    assert not lm64.checkpointing and lower < plain
    assert with_checkpoints > len(calls)  # the blocks ran again in the backward passes


def test_max_memory_turns_checkpointing_on_where_only_it_fits(lm64):
    method = get_method("integrated-gradients", n_steps=4)
    plans = []
    plain = explain_generation(PROMPT, lm64, method, continuation=ANSWER, batch_size=1,
                               on_plan=plans.append)  # fmt: skip
    assert not plans[0].checkpointing
    limit = plans[0].memory_bytes - 1  # the plain plan no longer fits
    kept = explain_generation(PROMPT, lm64, method, continuation=ANSWER, batch_size=1,
                              max_memory=limit, on_plan=plans.append)  # fmt: skip
    assert plans[1].checkpointing and plans[1].budget_bytes == limit
    assert "with gradient checkpointing" in plans[1].describe()
    assert plans[1].memory_bytes <= limit and plans[1].seconds is not None
    np.testing.assert_allclose(kept.matrix(), plain.matrix(), rtol=1e-5, atol=1e-9, equal_nan=True)
    with pytest.raises(ResourceError, match="the largest n_steps that fits is"):
        explain_generation(PROMPT, lm64, method, continuation=ANSWER, batch_size=1,
                           max_memory=plans[1].memory_bytes // 2)  # fmt: skip


def test_a_batch_that_does_not_fit_runs_in_halves(bert64):
    method = get_method("integrated-gradients", n_steps=4)
    whole = bert64.encode(SENTENCES)
    one = max(estimate_bytes(method, bert64, bert64.encode([t])) for t in SENTENCES)
    with bert64.checkpointed():
        one = max(one, max(estimate_bytes(method, bert64, bert64.encode([t])) for t in SENTENCES))
    assert estimate_bytes(method, bert64, whole) > one
    plain = explain_many(SENTENCES, bert64, method)
    sizes = []
    handle = bert64.model.register_forward_pre_hook(
        lambda m, a, k: sizes.append(k["inputs_embeds"].shape[0]), with_kwargs=True
    )
    try:
        split = explain_many(SENTENCES, bert64, method, max_memory=one)
    finally:
        handle.remove()
    for a, b in zip(plain, split, strict=True):
        np.testing.assert_allclose(b.scores, a.scores, rtol=1e-5, atol=1e-9)
    # no pass held the path points of all three texts at once
    assert max(sizes) < 3 * 4


def test_what_cannot_fit_is_refused_before_anything_is_written(tiny_lm_dir, tmp_path):
    out = tmp_path / "e.json"
    proc = run_cli("explain", PROMPT, "--model", str(tiny_lm_dir), "--method",
                   "integrated-gradients", "--continuation", ANSWER, "--max-memory", "1MiB",
                   "--json", str(out))  # fmt: skip
    assert proc.returncode != 0 and not out.exists()
    line = proc.stderr.strip().splitlines()[-1]
    assert "max_memory is 1 MiB" in line and "n_steps" in line and "Traceback" not in proc.stderr
    bad = run_cli("explain", PROMPT, "--model", str(tiny_lm_dir), "--max-memory", "lots")
    assert bad.returncode != 0 and "--max-memory" in bad.stderr and "Traceback" not in bad.stderr


def test_more_ablations_than_fit_are_refused_with_the_largest_that_fits(lm64):
    method = get_method("context-ablation", n_ablations=512, internal_batch_size=512)
    batch = lm64.encode([PROMPT + " and the capital of Spain is Madrid."])
    need = estimate_bytes(method, lm64, batch)
    with (
        pytest.raises(ResourceError, match=r"the largest n_ablations that fits is \d+"),
        memory_limit(need // 2),
    ):
        explain_many([PROMPT + " and the capital of Spain is Madrid."], lm64, method)


@pytest.mark.parametrize("query", ["auto", "first", "last", "mean"])
def test_attention_read_in_rows_equals_the_whole_maps(lm64, bert64, query, monkeypatch):
    for model, texts in ((lm64, [PROMPT, "a café", PROMPT + ANSWER]), (bert64, SENTENCES)):
        assert model.attention_in_rows
        rows = explain_many(texts, model, "attention", query=query, layers="all")
        monkeypatch.setattr(type(model), "attention_in_rows", property(lambda self: False))
        whole = explain_many(texts, model, "attention", query=query, layers="all")
        monkeypatch.undo()
        for a, b in zip(whole, rows, strict=True):
            np.testing.assert_allclose(b.scores, a.scores, rtol=1e-5, atol=1e-9)


def test_the_attention_estimate_has_no_whole_maps(lm64):
    method = get_method("attention")
    short = estimate_bytes(method, lm64, lm64.encode(["a " * 12]))
    long = estimate_bytes(method, lm64, lm64.encode(["a " * 48]))
    assert long / short < 4.5  # linear in the length (4x the tokens), not quadratic


def test_max_memory_travels_from_every_front_end(tiny_lm_dir, tmp_path):
    with pytest.raises(TextlensError, match=r"\{max_memory\}|max_memory"):
        Request(text=PROMPT, max_memory="lots").check()
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": PROMPT}) + "\n")
    from textlens.jobs import explain_file

    out = tmp_path / "out.jsonl"
    with pytest.raises(ResourceError, match="max_memory is 20 KiB"):
        explain_file(src, out, model=str(tiny_lm_dir), method="integrated-gradients",
                     max_memory="20KiB", progress=False)  # fmt: skip
    assert not out.exists()

"""Explaining a generated answer: one row per output token, batched over the output tokens."""

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import run_cli, tiny_model
from textlens.adapters import HFAdapter
from textlens.errors import TextlensError
from textlens.generation import explain_generation
from textlens.render.generation import generation_heatmap, generation_html

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def lm(byte_tokenizer):
    end = byte_tokenizer.eos_token_id
    model = tiny_model(
        "gpt2",
        "causal-lm",
        initializer_range=0.5,
        vocab_size=len(byte_tokenizer),
        bos_token_id=end,
        eos_token_id=end,
    ).double()  # exact sums: batched and one at a time agree to rounding
    return HFAdapter(model, byte_tokenizer, name="tiny-lm")


@pytest.mark.parametrize(
    ("method", "params"),
    [("gradient-x-input", {}), ("integrated-gradients", {"n_steps": 8}), ("occlusion", {})],
)
def test_batched_over_output_tokens_equals_one_at_a_time(lm, method, params):
    together = explain_generation(PROMPT, lm, method, continuation=" Paris, a café", **params)
    alone = explain_generation(
        PROMPT, lm, method, continuation=" Paris, a café", batch_size=1, **params
    )
    assert len(together.explanations) == len(alone.explanations) > 3
    np.testing.assert_allclose(together.matrix(), alone.matrix(), atol=1e-5, equal_nan=True)


def test_each_row_explains_its_token_after_exactly_the_tokens_before_it(lm, byte_tokenizer):
    gen = explain_generation(PROMPT, lm, "gradient-x-input", continuation=" Paris, a café")
    forced = byte_tokenizer(" Paris, a café", add_special_tokens=False)["input_ids"]
    prompt = byte_tokenizer(PROMPT)["input_ids"]
    assert list(gen.token_ids) == prompt + forced and gen.n_prompt == len(prompt)
    assert gen.text == PROMPT + " Paris, a café" and gen.continuation == " Paris, a café"
    assert "Paris" in gen.output_tokens and not any("Ġ" in t for t in gen.tokens)
    matrix = gen.matrix()
    for j, exp in enumerate(gen.explanations):
        assert np.isfinite(matrix[j, : gen.n_prompt + j]).all()
        assert np.isnan(matrix[j, gen.n_prompt + j :]).all()
        assert exp.target.index == forced[j]
        # the step score from one pass over the whole answer is the row's own target
        assert np.exp(exp.target.score) == pytest.approx(gen.probabilities[j], rel=1e-6)
        by_hand = lm.model(torch.tensor([list(gen.token_ids[: gen.n_prompt + j])])).logits
        logp = by_hand[0, -1].log_softmax(-1)
        assert float(logp[forced[j]]) == pytest.approx(exp.target.score, rel=1e-6)
        h = -(logp.exp() * logp).sum()
        assert float(h) == pytest.approx(gen.entropies[j], rel=1e-6)


def test_generated_tokens_are_the_models_greedy_answer(lm):
    gen = explain_generation(PROMPT, lm, "gradient", generate=5)
    ids = torch.tensor([list(gen.token_ids[: gen.n_prompt])])
    with torch.no_grad():
        greedy = lm.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False,
            pad_token_id=lm.pad_token_id,
        )[0, gen.n_prompt :].tolist()  # fmt: skip
    end = lm.tokenizer.eos_token_id
    expected = greedy[: greedy.index(end)] if end in greedy else greedy
    assert list(gen.token_ids[gen.n_prompt :]) == expected
    sampled = [explain_generation(PROMPT, lm, "gradient", generate=5, sample_seed=s)
               for s in (1, 1)]  # fmt: skip
    assert sampled[0].token_ids == sampled[1].token_ids  # seeded


def test_layered_methods_give_a_matrix_per_layer(lm):
    gen = explain_generation(PROMPT, lm, "layer-conductance", continuation=" Paris", n_steps=4)
    assert gen.layered and gen.matrix(1).shape == gen.matrix().shape
    data = json.loads(gen.to_json())
    assert data["schema"] == "textlens.generation/1" and set(data["layer_matrices"]) == {"1", "2"}
    assert data["matrix"][0][-1] is None  # after the prefix: no score, not a zero


def test_heatmap_writes_the_matrix(lm, tmp_path):
    gen = explain_generation(PROMPT, lm, "gradient-x-input", continuation=" Paris")
    generation_heatmap(gen, tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either generate=N"),
        ({"generate": 2, "continuation": "x"}, "either generate=N"),
        ({"generate": 0}, "at least 1 token"),
        ({"generate": 10**6}, "context leaves"),
        ({"continuation": "  "}, "continuation is empty"),
    ],
)
def test_bad_requests_are_refused(lm, kwargs, message):
    with pytest.raises(TextlensError, match=message):
        explain_generation(PROMPT, lm, "gradient", **kwargs)


def test_a_classifier_is_refused(tiny_bert):
    with pytest.raises(TextlensError, match="needs a causal or encoder-decoder language model"):
        explain_generation(PROMPT, tiny_bert, "gradient", generate=2)


def test_command_line_generate(tiny_lm_dir, tiny_dir, tmp_path):
    out = tmp_path / "gen.json"
    proc = run_cli("explain", PROMPT, "--model", str(tiny_lm_dir), "--continuation", " Paris",
                   "--method", "gradient-x-input", "--json", str(out), check=True)  # fmt: skip
    assert "continuation: ' Paris'" in proc.stdout and "'Paris' p=" in proc.stdout
    assert "plan: gradient-x-input on 1 output token (" in proc.stderr  # before the work
    data = json.loads(out.read_text())
    assert data["continuation"] == " Paris" and data["roles"][-1] == "output"
    assert data["plan"]["passes"] == 1 and data["plan"]["shared"]
    page = tmp_path / "gen.html"
    run_cli("explain", PROMPT, "--model", str(tiny_lm_dir), "--continuation", " Paris, a",
            "--prompt-only", "--html", str(page), check=True)  # fmt: skip
    assert "tl-out" in page.read_text(encoding="utf-8")
    for args, message in [
        (["--generate", "0", "--model", str(tiny_lm_dir)], "at least 1 token"),
        (["--generate", "2", "--model", str(tiny_dir)], "or encoder-decoder language model"),
        (["--generate", "2", "--target", "x", "--model", str(tiny_lm_dir)], "does not go with"),
    ]:
        bad = run_cli("explain", PROMPT, *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr


TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def chat_lm(byte_tokenizer):
    tokenizer = copy.deepcopy(byte_tokenizer)
    tokenizer.add_tokens(["<|im_start|>", "<|im_end|>"], special_tokens=True)
    tokenizer.chat_template = TEMPLATE
    model = tiny_model("gpt2", "causal-lm", vocab_size=len(tokenizer)).double()
    return HFAdapter(model, tokenizer, name="tiny-chat")


def test_chat_tokens_are_tagged_and_are_the_ids_generate_consumed(chat_lm):
    tokenizer = chat_lm.tokenizer
    gen = explain_generation(
        "Where is Paris?", chat_lm, "gradient-x-input", continuation=" In France.",
        chat=True, system="Be brief.",
    )  # fmt: skip
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Where is Paris?"}]  # fmt: skip
    consumed = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    consumed = consumed["input_ids"] if hasattr(consumed, "keys") else consumed
    assert list(gen.token_ids[: gen.n_prompt]) == list(consumed)
    by_role = {}
    for token, role in zip(gen.tokens, gen.roles, strict=True):
        by_role.setdefault(role, []).append(token)
    assert "".join(by_role["user"]) == "WhereisParis?"
    assert "".join(by_role["system"]) == "Bebrief."
    assert by_role["assistant"] == list(gen.output_tokens)
    assert "<|im_start|>" in by_role["template"] and "assistant" in "".join(by_role["template"])
    template = np.array([r == "template" for r in gen.roles])
    assert np.array(gen.special)[template].all()  # out of colour scales and removal metrics
    assert not np.array(gen.special)[~template].any()
    for exp in gen.explanations:  # every row's Explanation carries the flags
        assert exp.special == tuple(template[: len(exp.tokens)])


def test_chat_needs_a_template(lm):
    with pytest.raises(TextlensError, match="no chat template"):
        explain_generation(PROMPT, lm, "gradient", generate=2, chat=True)
    with pytest.raises(TextlensError, match="goes with chat=True"):
        explain_generation(PROMPT, lm, "gradient", generate=2, system="Be brief.")


def test_attributing_to_the_prompt_only_keeps_earlier_output_tokens_fixed(lm):
    every = explain_generation(PROMPT, lm, "integrated-gradients", continuation=" Paris, a",
                               n_steps=8)  # fmt: skip
    prompt = explain_generation(PROMPT, lm, "integrated-gradients", continuation=" Paris, a",
                                n_steps=8, attribute_to="prompt")  # fmt: skip
    n = every.n_prompt
    np.testing.assert_allclose(every.matrix()[0], prompt.matrix()[0], equal_nan=True)
    assert np.all(prompt.matrix()[1:, n:][np.isfinite(prompt.matrix()[1:, n:])] == 0)
    assert np.any(every.matrix()[1:, n:][np.isfinite(every.matrix()[1:, n:])] != 0)


def test_the_html_page_colours_the_tokens_before_the_hovered_output_token(lm, tmp_path, chromium):
    gen = explain_generation(PROMPT, lm, "gradient-x-input", continuation=" Paris, a")
    page_file = tmp_path / "gen.html"
    page_file.write_text(generation_html(gen), encoding="utf-8")
    page = chromium.new_page()
    page.goto(page_file.as_uri())
    last = len(gen.output_tokens) - 1
    page.hover(f'.tl-out[data-row="{last}"]')
    background = page.eval_on_selector_all(
        ".tl-text span[data-i]", "spans => spans.map(s => s.style.background)"
    )
    n = gen.n_prompt + last
    assert all(background[i] for i in range(1, n))  # every token before it is coloured
    assert not any(background[n:])  # the hovered token and the ones after it are not
    page.hover('.tl-out[data-row="0"]')
    first = page.eval_on_selector_all(
        ".tl-text span[data-i]", "spans => spans.map(s => s.style.background)"
    )
    assert not any(first[gen.n_prompt :]) and first[: gen.n_prompt] != background[: gen.n_prompt]


def test_auto_batches_shrink_to_what_memory_allows(lm):
    whole = explain_generation(PROMPT, lm, "integrated-gradients", continuation=" Paris, a café",
                               n_steps=4)  # fmt: skip
    assert whole.batch_size == len(whole.output_tokens)  # all output tokens in one batch
    tight = explain_generation(PROMPT, lm, "integrated-gradients", continuation=" Paris, a café",
                               n_steps=4, max_memory=whole.plan.memory_bytes - 1)  # fmt: skip
    assert tight.batch_size < whole.batch_size and not tight.plan.checkpointing
    np.testing.assert_allclose(tight.matrix(), whole.matrix(), atol=1e-5, equal_nan=True)


def test_a_batch_that_runs_out_of_memory_is_halved_and_run_again(lm):
    from textlens.methods.gradient import GradientXInput

    @dataclasses.dataclass(frozen=True)
    class Hungry(GradientXInput):  # runs out of memory above two texts a batch
        def attribute(self, model, batch, target):
            if len(batch) > 2:
                raise MemoryError
            return super().attribute(model, batch, target)

    gen = explain_generation(PROMPT, lm, Hungry(), continuation=" Paris, a café")
    plain = explain_generation(PROMPT, lm, "gradient-x-input", continuation=" Paris, a café")
    assert gen.batch_size == 2 and len(gen.output_tokens) > 2
    np.testing.assert_allclose(gen.matrix(), plain.matrix(), atol=1e-8, equal_nan=True)


def _rows_through(lm):
    """A counter of the rows the model runs forward, and the hook's handle."""
    seen = []

    def count(module, args, kwargs):
        x = kwargs.get("inputs_embeds")
        seen.append(len(x) if x is not None else len(args[0]))

    return seen, lm.model.register_forward_pre_hook(count, with_kwargs=True)


@pytest.mark.parametrize(
    ("method", "params", "alone"),
    [
        ("gradient-x-input", {}, 1),
        ("integrated-gradients", {"n_steps": 8}, 8),
        ("occlusion", {}, 0),
    ],
)
def test_the_rows_of_an_answer_share_their_forward_passes(lm, method, params, alone):
    seen, hook = _rows_through(lm)
    try:
        gen = explain_generation(PROMPT, lm, method, continuation=" Paris, a café", **params)
    finally:
        hook.remove()
    n_out, n_in = len(gen.output_tokens), len(gen.tokens)
    # one sequence serves every output token: no more rows than one answer's worth (path points
    # or occluded positions), plus the clean, baseline and step passes
    per_answer = alone if alone else n_in
    assert sum(seen) <= per_answer + 5
    prefixes = n_out * (per_answer + 1)  # a prefix per row: its passes and its clean pass
    assert 2 * sum(seen) < prefixes


def test_rows_that_share_an_input_get_the_same_gradients_without_vmap(lm, monkeypatch):
    together = explain_generation(PROMPT, lm, "integrated-gradients", continuation=" Paris, a",
                                  n_steps=4)  # fmt: skip
    grad, refused = torch.autograd.grad, []

    def no_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            refused.append(1)
            raise RuntimeError("batching rule not implemented")
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    looped = explain_generation(PROMPT, lm, "integrated-gradients", continuation=" Paris, a",
                                n_steps=4)  # fmt: skip
    assert refused  # the batched backward pass was tried, and the loop took over
    np.testing.assert_allclose(looped.matrix(), together.matrix(), atol=1e-10, equal_nan=True)


def test_a_forced_token_position_outside_its_text_is_refused(lm):
    from textlens.targets import ForcedTokens

    batch = lm.encode(["a b c"], warn=False)
    with torch.no_grad():
        out = lm.forward(lm.embed(batch), batch)
    with pytest.raises(TextlensError, match="position"):
        ForcedTokens((5,), positions=(int(batch.lengths[0]),)).bind(lm, batch, out)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("gradient-x-input", {}),
        ("integrated-gradients", {"n_steps": 8}),
        ("occlusion", {}),
        ("smoothgrad", {"n_samples": 2}),
    ],
)
def test_the_plan_counts_the_model_passes_before_they_run(lm, method, params):
    seen, hook = _rows_through(lm)
    plans = []

    def planned(plan):
        plans.append((plan, sum(seen)))

    try:
        gen = explain_generation(
            PROMPT, lm, method, continuation=" Paris, a café", on_plan=planned, **params
        )
    finally:
        hook.remove()
    ((plan, before),) = plans
    assert plan is gen.plan and plan.output_tokens == len(gen.output_tokens)
    assert plan.shared == (method != "smoothgrad")
    # every batch adds its clean pass: one row when the rows share it, else one a row
    clean = plan.batches if plan.shared else plan.output_tokens
    assert sum(seen) - before == plan.passes + clean
    if method in ("integrated-gradients", "smoothgrad"):
        assert 0 < plan.memory_bytes < plan.free_bytes
    assert f"about {plan.passes} model pass" in plan.describe()


def test_shared_rows_keep_each_rows_convergence_delta(lm):
    together = explain_generation(PROMPT, lm, "integrated-gradients", continuation=" Paris, a",
                                  n_steps=8)  # fmt: skip
    alone = explain_generation(PROMPT, lm, "integrated-gradients", continuation=" Paris, a",
                               n_steps=8, batch_size=1)  # fmt: skip
    for a, b in zip(together.explanations, alone.explanations, strict=True):
        for name in ("convergence_delta", "target_change", "baseline_score"):
            assert float(a.extras[name]) == pytest.approx(float(b.extras[name]), abs=1e-8)


@pytest.mark.parametrize(
    ("method", "params"),
    [("gradient-x-input", {}), ("integrated-gradients", {"n_steps": 4}), ("occlusion", {})],
)
def test_logits_only_at_the_positions_read_change_nothing(lm, monkeypatch, method, params):
    seen = []

    def record(module, args, kwargs):
        seen.append(kwargs.get("logits_to_keep"))

    hook = lm.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        kept = explain_generation(PROMPT, lm, method, continuation=" Paris, a", **params)
    finally:
        hook.remove()
    assert any(isinstance(k, torch.Tensor) for k in seen)  # the output layer ran on a few rows
    monkeypatch.setattr(lm, "keeps_logits", False)
    full = explain_generation(PROMPT, lm, method, continuation=" Paris, a", **params)
    np.testing.assert_allclose(kept.matrix(), full.matrix(), atol=1e-10, equal_nan=True)


def test_output_tokens_backward_in_groups_of_any_size_give_the_same_matrix(lm, monkeypatch):
    import textlens.methods.base as base

    answer = " Paris, a café"
    grouped = explain_generation(PROMPT, lm, "integrated-gradients", continuation=answer,
                                 n_steps=4)  # fmt: skip
    calls = []
    hook = lm.model.lm_head.register_full_backward_hook(lambda *args: calls.append(1))
    monkeypatch.setattr(base, "BACKWARD_TOKENS", 1)  # a backward pass per output token
    try:
        single = explain_generation(PROMPT, lm, "integrated-gradients", continuation=answer,
                                    n_steps=4)  # fmt: skip
    finally:
        hook.remove()
    np.testing.assert_allclose(single.matrix(), grouped.matrix(), atol=1e-10, equal_nan=True)
    # the output layer's backward ran once for all output tokens, not once per token
    assert len(single.output_tokens) > 3
    assert len(calls) == 1


@pytest.mark.parametrize("arch", ["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "phi3"])
def test_a_forward_pass_in_pieces_gives_the_same_matrix_and_backward_skips_later_pieces(
    arch, lm, byte_tokenizer, monkeypatch
):
    import transformers

    import textlens.methods.base as base

    model = lm
    if arch != "gpt2":
        end = byte_tokenizer.eos_token_id
        config = transformers.AutoConfig.for_model(
            arch, vocab_size=len(byte_tokenizer), hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, intermediate_size=64,
            max_position_embeddings=128, initializer_range=0.5, pad_token_id=end,
            bos_token_id=end, eos_token_id=end, sliding_window=4, use_sliding_window=True,
            max_window_layers=1,
        )  # fmt: skip
        torch.manual_seed(0)
        decoder = transformers.AutoModelForCausalLM.from_config(config).eval().double()
        model = HFAdapter(decoder, byte_tokenizer, name=f"tiny-{arch}")
    assert model.runs_in_pieces
    answer = " Paris, a café"
    monkeypatch.setattr(base, "BACKWARD_TOKENS", 1)  # a backward pass per output token

    def run() -> tuple[np.ndarray, list[int], list[int]]:
        forward, backward = [], []
        block = model.layers[0]
        hooks = [
            model.model.register_forward_pre_hook(
                lambda m, a, k: forward.append(k["inputs_embeds"].shape[1]), with_kwargs=True
            ),
            block.register_full_backward_hook(lambda m, gi, go: backward.append(go[0].shape[1])),
        ]
        try:
            gen = explain_generation(PROMPT, model, "integrated-gradients", continuation=answer,
                                     n_steps=4)  # fmt: skip
        finally:
            for hook in hooks:
                hook.remove()
        return gen.matrix(), forward, backward

    whole, forward_whole, backward_whole = run()
    monkeypatch.setattr(base, "PIECE_TOKENS", 1)
    pieced, forward_pieced, backward_pieced = run()
    np.testing.assert_allclose(pieced, whole, atol=1e-9, equal_nan=True)
    # the attributed pass ran in PIECES calls that together cover its positions
    n = base.PIECES
    assert len(forward_pieced) == len(forward_whole) + n - 1
    width = next(
        sum(forward_pieced[i : i + n])
        for i in range(len(forward_pieced))
        if max(forward_pieced[i : i + n]) < sum(forward_pieced[i : i + n]) in forward_whole
    )
    # an early output token's backward pass ran through the early pieces only
    assert max(backward_whole) == width and min(backward_pieced) < width
    assert sum(backward_pieced) < sum(backward_whole)


def test_a_pass_holds_as_many_path_points_as_the_token_budget_counting_shared_inputs_once(
    lm, monkeypatch
):
    import textlens.methods.integrated_gradients as ig

    answer = " Paris, a café"
    width = len(explain_generation(PROMPT, lm, "gradient", continuation=answer).tokens)
    monkeypatch.setattr(ig, "TOKEN_BUDGET", 3 * width)  # three inputs' worth of tokens
    seen, hook = _rows_through(lm)
    try:
        explain_generation(PROMPT, lm, "integrated-gradients", continuation=answer, n_steps=8)
    finally:
        hook.remove()
    # every output token's row at three path points, run as three inputs: 8 points in 3 passes
    assert sorted(seen, reverse=True)[:3] == [3, 3, 2]

"""Every supported architecture, as a tiny model built from a config, through the adapter."""

import numpy as np
import pytest
import torch

from conftest import ARCHITECTURES, SENTENCES, tiny_model
from textlens import explain_many
from textlens.adapters import HFAdapter, load_model
from textlens.adapters.hf import detect_task
from textlens.errors import TextlensError

EXPECTED_TABLES = {
    "bert": {"word", "position", "token_type"},
    "roberta": {"word", "position", "token_type"},
    "distilbert": {"word", "position"},
    "albert": {"word", "position", "token_type"},
    "electra": {"word", "position", "token_type"},
    "deberta-v2": {"word", "position", "token_type"},
    "gpt2": {"word", "position"},
    "llama": {"word"},
}


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def adapter(request, tokenizer):
    head = "causal-lm" if request.param in ("gpt2", "llama") else "sequence-classification"
    return HFAdapter(tiny_model(request.param, head), tokenizer, name=request.param)


def test_wiring_finds_the_embedding_tables(adapter):
    assert set(adapter.sub_embeddings()) == EXPECTED_TABLES[adapter.name]
    assert adapter.n_layers == 2


def test_running_from_embeddings_equals_running_from_ids(adapter):
    batch = adapter.encode(SENTENCES)
    with torch.no_grad():
        from_embeds = adapter.forward(adapter.embed(batch), batch, hidden_states=True)
        kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if adapter.takes_token_types:
            kwargs["token_type_ids"] = batch.token_type_ids
        from_ids = adapter.model(**kwargs)
    real = batch.real_mask
    a, b = from_embeds.logits, from_ids.logits
    if a.dim() == 3:
        a, b = a[real], b[real]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert len(from_embeds.hidden_states) == adapter.n_layers + 1


def test_padding_does_not_change_the_outputs(adapter):
    batch = adapter.encode(SENTENCES)
    alone = adapter.encode(SENTENCES[1:2])
    with torch.no_grad():
        together = adapter.forward(adapter.embed(batch), batch).logits[1]
        single = adapter.forward(adapter.embed(alone), alone).logits[0]
    n = alone.input_ids.shape[1]
    if together.dim() == 2:  # causal LM: compare the real positions
        together, single = together[:n], single[:n]
    torch.testing.assert_close(together, single, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ["gradient", "integrated-gradients", "layer-conductance"])
def test_methods_run_on_every_architecture(adapter, method):
    params = {"n_steps": 8} if method != "gradient" else {}
    exps = explain_many(SENTENCES[:2], adapter, method, **params)
    for exp, text in zip(exps, SENTENCES[:2], strict=True):
        assert exp.text == text
        assert exp.scores.shape[-1] == len(exp.tokens)
        assert np.isfinite(exp.scores).all()
        if method == "layer-conductance":
            assert exp.layers == (1, 2)


def test_attention_on_every_architecture(adapter):
    exp = explain_many(SENTENCES[:1], adapter, "attention")[0]
    assert exp.scores.shape == (2, len(exp.tokens))
    assert (exp.scores >= 0).all() and (exp.scores <= 1 + 1e-6).all()


def test_task_detection(tokenizer):
    assert detect_task(tiny_model("bert", "question-answering")) == "question-answering"
    assert detect_task(tiny_model("bert", "token-classification")) == "token-classification"
    assert detect_task(tiny_model("gpt2", "causal-lm")) == "causal-lm"
    assert detect_task(tiny_model("bert", "base")) == "base"


def test_load_model_from_a_saved_folder(tmp_path, tokenizer):
    model = tiny_model("distilbert")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    adapter = load_model(tmp_path)
    assert adapter.task == "sequence-classification"
    assert adapter.labels == ("negative", "positive")


def test_load_model_errors_are_one_clear_line(tmp_path):
    with pytest.raises(TextlensError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(TextlensError, match="holds no model"):
        load_model(tmp_path)
    with pytest.raises(TextlensError, match="needs its tokenizer"):
        load_model(tiny_model("bert"))


def test_function_adapter_escape_hatch(tokenizer):
    torch.manual_seed(0)
    table = torch.nn.Embedding(30522, 8)
    weights = torch.randn(8, 2)

    def forward(embeds, mask):
        pooled = (embeds * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return pooled @ weights

    adapter = textlens_function_adapter(forward, tokenizer, table)
    exp = explain_many(["good film", "bad"], adapter, "integrated-gradients", n_steps=16)[0]
    assert exp.target.label in ("neg", "pos")
    assert abs(float(exp.extras["convergence_delta"])) < 1e-4
    with pytest.raises(TextlensError, match="exposes no layers"):
        explain_many(["good film"], adapter, "layer-conductance")


def textlens_function_adapter(forward, tokenizer, table):
    from textlens import FunctionAdapter

    return FunctionAdapter(forward, tokenizer, table, labels=("neg", "pos"))


def test_early_exit_hidden_states_equal_the_full_pass(adapter):

    batch = adapter.encode(SENTENCES)
    rows = torch.arange(len(batch))
    with torch.no_grad():
        full = adapter.forward(adapter.embed(batch), batch, hidden_states=True).hidden_states
        for layer in range(adapter.n_layers + 1):
            early = adapter.hidden_state_at(adapter.embed(batch), batch, rows, layer)
            torch.testing.assert_close(early[batch.real_mask], full[layer][batch.real_mask])


def test_weights_are_frozen_only_while_a_method_runs(tiny_bert):
    """The pipeline freezes the weights around ``attribute`` and gives them back after."""
    from textlens import explain

    seen = []
    original = tiny_bert.forward

    def spy(*args, **kwargs):
        seen.append(any(p.requires_grad for p in tiny_bert.model.parameters()))
        return original(*args, **kwargs)

    tiny_bert.forward = spy
    try:
        explain("a good film", tiny_bert, "integrated-gradients", n_steps=4)
    finally:
        del tiny_bert.forward
    assert seen[0] and not any(seen[1:])  # the clean pass, then the method's passes frozen
    assert all(p.requires_grad for p in tiny_bert.model.parameters())


def test_the_first_block_can_read_given_states(tiny_bert):
    batch = tiny_bert.encode(SENTENCES)
    rows = torch.arange(len(SENTENCES))
    word = tiny_bert.embed(batch)
    with torch.no_grad():
        clean = tiny_bert.hidden_state_at(word, batch, rows, 2)
        start = tiny_bert.hidden_state_at(word, batch, rows, 0)  # the embedding output
        other = torch.zeros_like(word)
        assert not torch.allclose(tiny_bert.hidden_state_at(other, batch, rows, 2), clean)
        with tiny_bert.entering_blocks(start):
            entered = tiny_bert.hidden_state_at(other, batch, rows, 2)
            logits = tiny_bert.forward(other, batch, rows).logits
    torch.testing.assert_close(entered, clean)
    torch.testing.assert_close(logits, tiny_bert.forward(word, batch, rows).logits)

"""Encoder-decoder models (T5, BART, Marian): each output token explained by the source tokens
and by the decoder's tokens before it, generated or forced, batched as one at a time."""

import json

import numpy as np
import pytest
import torch
import transformers
from click.testing import CliRunner

from conftest import SENTENCES
from textlens import METHODS, explain
from textlens.adapters import HFAdapter, Seq2SeqAdapter, load_model
from textlens.cli import main
from textlens.errors import TextlensError
from textlens.generation import explain_generation
from textlens.methods.base import describe

CONFIGS = {
    "t5": dict(
        d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, decoder_start_token_id=0,
        pad_token_id=0, eos_token_id=102,
    ),
    "bart": dict(
        d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=128, pad_token_id=0, bos_token_id=101, eos_token_id=102,
        decoder_start_token_id=102, forced_eos_token_id=None,
    ),
    # Marian keeps the encoder's and the decoder's word embeddings apart
    "marian": dict(
        d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=128, pad_token_id=0, eos_token_id=102, decoder_start_token_id=0,
        share_encoder_decoder_embeddings=False,
    ),
}  # fmt: skip
SUPPORTED = sorted(n for n, c in METHODS.items() if describe(c, "encoder_decoder"))
SOURCE = SENTENCES[0]


def tiny_seq2seq(kind: str, seed: int = 0):
    cfg = transformers.AutoConfig.for_model(kind, vocab_size=30522, **CONFIGS[kind])
    torch.manual_seed(seed)
    return transformers.AutoModelForSeq2SeqLM.from_config(cfg, attn_implementation="eager").eval()


@pytest.fixture(scope="module", params=["t5", "bart"])
def seq2seq(request, tokenizer):
    return load_model(tiny_seq2seq(request.param), tokenizer)


def test_the_gradient_family_occlusion_and_attention_are_supported():
    assert {"gradient", "gradient-x-input", "smoothgrad", "integrated-gradients"} <= set(SUPPORTED)
    assert {"occlusion", "attention"} <= set(SUPPORTED)


@pytest.mark.parametrize("method", SUPPORTED)
def test_every_method_batched_equals_one_output_token_at_a_time(seq2seq, method):
    settings = describe(METHODS[method], "test_settings")
    gen = explain_generation(SOURCE, seq2seq, method, generate=4, **settings)
    one = explain_generation(
        SOURCE, seq2seq, method, continuation=gen.continuation, batch_size=1, **settings
    )
    assert gen.batch_size > 1 and one.batch_size == 1
    assert one.token_ids == gen.token_ids
    n_out, n_source = len(gen.output_tokens), gen.n_source
    source, target = gen.source_matrix(), gen.target_matrix()
    assert source.shape == (n_out, n_source) and target.shape == (n_out, 1 + n_out)
    assert np.isfinite(source).all()
    for j in range(n_out):  # the start token and the earlier output tokens; nothing after
        assert np.isfinite(target[j, : j + 1]).all() and np.isnan(target[j, j + 1 :]).all()
    tolerance = describe(METHODS[method], "batch_tolerance")
    np.testing.assert_allclose(gen.matrix(), one.matrix(), equal_nan=True, **tolerance)


@pytest.mark.parametrize("kind", ["t5", "bart", "marian"])
def test_gradient_x_input_is_the_gradient_of_each_output_tokens_log_probability(kind, tokenizer):
    model = tiny_seq2seq(kind)
    gen = explain_generation(SOURCE, load_model(model, tokenizer), "gradient-x-input", generate=3)
    source = torch.tensor([gen.token_ids[: gen.n_source]])
    decoder = torch.tensor([gen.token_ids[gen.n_source :]])
    enc = model.get_encoder().get_input_embeddings()(source).detach().requires_grad_(True)
    dec = model.get_decoder().get_input_embeddings()(decoder).detach().requires_grad_(True)
    for j, token in enumerate(gen.token_ids[gen.n_prompt :]):
        logits = model(inputs_embeds=enc, decoder_inputs_embeds=dec[:, : j + 1]).logits
        value = logits[0, j].log_softmax(-1)[token]
        g_enc, g_dec = torch.autograd.grad(value, (enc, dec))
        expected = torch.cat([(g_enc * enc).sum(-1)[0], (g_dec * dec).sum(-1)[0, : j + 1]]).detach()
        row = gen.matrix()[j, : gen.n_source + j + 1]
        special = np.asarray(gen.special[: len(row)])
        np.testing.assert_allclose(row[~special], expected.numpy()[~special], rtol=1e-4, atol=1e-6)
        assert np.exp(float(value.detach())) == pytest.approx(gen.probabilities[j], rel=1e-4)


def test_generation_is_the_models_greedy_output_and_forced_decoding_follows_the_answer(
    seq2seq,
):
    gen = explain_generation(SOURCE, seq2seq, "gradient", generate=5)
    source = torch.tensor([gen.token_ids[: gen.n_source]])
    greedy = seq2seq.model.generate(
        input_ids=source, max_new_tokens=5, do_sample=False, num_beams=1,
        decoder_start_token_id=seq2seq.start_token_id,
    )[0, 1:].tolist()  # fmt: skip
    end = seq2seq.tokenizer.eos_token_id
    expected = greedy[: greedy.index(end)] if end in greedy else greedy
    assert list(gen.token_ids[gen.n_prompt :]) == expected
    assert gen.tokens[gen.n_source] == seq2seq.tokenizer.convert_ids_to_tokens(
        seq2seq.start_token_id
    )
    assert gen.roles[: gen.n_source] == ("source",) * gen.n_source
    assert gen.special[gen.n_source]  # the decoder's start token: uncoloured, never removed
    forced = explain_generation(SOURCE, seq2seq, "gradient", continuation="the house")
    assert forced.continuation == "the house" and forced.text == SOURCE + "\n" + "the house"
    assert [forced.text[a:b] for a, b in forced.offsets[forced.n_prompt :]] == ["the", " house"]


def test_attention_reads_the_cross_and_the_decoders_attention_of_each_output_token(seq2seq):
    gen = explain_generation(SOURCE, seq2seq, "attention", generate=3, layers=(1, 2))
    source = torch.tensor([gen.token_ids[: gen.n_source]])
    decoder = torch.tensor([gen.token_ids[gen.n_source :]])
    with torch.no_grad():
        out = seq2seq.model(input_ids=source, decoder_input_ids=decoder, output_attentions=True)
    for layer in (1, 2):
        cross = out.cross_attentions[layer - 1][0].mean(0).numpy()  # (decoder, source)
        mine = out.decoder_attentions[layer - 1][0].mean(0).numpy()
        for j in range(3):
            np.testing.assert_allclose(gen.source_matrix(layer)[j], cross[j], atol=1e-5)
            np.testing.assert_allclose(
                gen.target_matrix(layer)[j, : j + 1], mine[j, : j + 1], atol=1e-5
            )


def test_json_and_pictures_carry_both_matrices(seq2seq, tmp_path):
    from textlens.render.generation import generation_heatmap, generation_html

    gen = explain_generation(SOURCE, seq2seq, "gradient-x-input", generate=3)
    data = json.loads(gen.to_json())
    assert data["n_source"] == gen.n_source and data["separator"] == "\n"
    assert len(data["matrix"][0]) == len(gen.tokens)
    generation_heatmap(gen, tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 1000
    assert 'data-row="2"' in generation_html(gen)
    assert gen.to_frame().shape == (3, len(gen.tokens))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_encoder_decoders(tokenizer, dtype):
    full = load_model(tiny_seq2seq("t5"), tokenizer)
    half = load_model(tiny_seq2seq("t5").to(dtype), tokenizer)
    a = explain_generation(SOURCE, full, "gradient-x-input", continuation="the house")
    b = explain_generation(SOURCE, half, "gradient-x-input", continuation="the house")
    assert b.matrix().dtype == np.float64
    keep = np.isfinite(a.matrix())
    assert np.corrcoef(a.matrix()[keep], b.matrix()[keep])[0, 1] > 0.9


def test_a_saved_encoder_decoder_loads_and_explains_from_the_command_line(tokenizer, tmp_path):
    folder = tmp_path / "t5"
    tiny_seq2seq("t5").save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    adapter = load_model(str(folder))
    assert isinstance(adapter, Seq2SeqAdapter) and adapter.task == "seq2seq-lm"
    out = tmp_path / "g.json"
    result = CliRunner().invoke(
        main,
        ["explain", SOURCE, "--model", str(folder), "--generate", "3", "--method",
         "gradient-x-input", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["n_source"] == len(tokenizer(SOURCE)["input_ids"])
    assert len(data["matrix"]) == 3


def test_what_an_encoder_decoder_refuses_is_one_line(seq2seq, tokenizer):
    with pytest.raises(TextlensError, match="explained through what it writes"):
        explain(SOURCE, seq2seq, "gradient")
    with pytest.raises(TextlensError, match="does not explain encoder-decoder models; use one of"):
        explain_generation(SOURCE, seq2seq, "layer-conductance", generate=2)
    with pytest.raises(TextlensError, match="wrap it with load_model"):
        HFAdapter(tiny_seq2seq("t5"), tokenizer)
    result = CliRunner().invoke(main, ["explain", SOURCE, "--model", "demo", "--generate", "2"])
    assert result.exit_code != 0 and "encoder-decoder" in result.output


def test_the_web_api_explains_what_an_encoder_decoder_writes(tokenizer):
    from conftest import local_client
    from textlens.server.app import Limits, create_app

    client = local_client(create_app(load_model(tiny_seq2seq("bart"), tokenizer), Limits()))
    assert client.get("/api/model").json()["task"] == "seq2seq-lm"
    r = client.post(
        "/api/explain", json={"text": SOURCE, "method": "gradient-x-input", "generate": 3}
    )
    body = r.json()
    assert r.status_code == 200, body
    assert body["explanation"]["n_source"] == len(tokenizer(SOURCE)["input_ids"])
    r = client.post("/api/explain", json={"text": SOURCE, "method": "gradient"})
    assert r.status_code == 422 and "explained through what it writes" in r.json()["detail"]
    r = client.post("/api/explain", json={"text": SOURCE, "method": "relevance", "generate": 2})
    assert r.status_code == 422 and "does not explain encoder-decoder" in r.json()["detail"]

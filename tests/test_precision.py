"""Half-precision models: every method runs on bfloat16 and float16 weights and computes in
float32; dtype is chosen when a model is loaded, and a model given as an object keeps its own."""

import numpy as np
import pytest
import torch

from conftest import SENTENCES, tiny_model
from textlens import METHODS, explain
from textlens.adapters import HFAdapter
from textlens.adapters.loading import load_model
from textlens.errors import TextlensError
from textlens.methods.base import describe

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@pytest.fixture(scope="module", params=["bert", "llama"])
def models(request, tokenizer):
    """A tiny model in float32 and the same weights in each half precision."""
    head = "sequence-classification" if request.param == "bert" else "causal-lm"
    full = HFAdapter(tiny_model(request.param, head), tokenizer, name=f"tiny-{request.param}")
    halves = {
        name: HFAdapter(tiny_model(request.param, head).to(dtype), tokenizer, name=name)
        for name, dtype in DTYPES.items()
    }
    return full, halves


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_in_half_precision(models, method):
    full, halves = models
    settings = describe(METHODS[method], "test_settings")
    reference = explain(SENTENCES[0], full, method, **settings)
    for name, half in halves.items():
        exp = explain(SENTENCES[0], half, method, **settings)
        assert exp.scores.dtype == np.float64 and np.isfinite(exp.scores).all(), name
        assert exp.scores.shape == reference.scores.shape
        if method in ("gradient-x-input", "integrated-gradients", "relevance"):
            # the same weights rounded: the same picture, within half precision's noise (not
            # occlusion's differences of a random tiny model, below bfloat16's resolution)
            a, b = exp.scores.ravel(), reference.scores.ravel()
            assert np.corrcoef(a, b)[0, 1] > 0.9, (name, a, b)


def test_the_embeddings_and_outputs_the_methods_see_are_float32(models):
    _, halves = models
    half = halves["bfloat16"]
    batch = half.encode([SENTENCES[0]])
    assert half.dtype == torch.bfloat16 and half.embed(batch).dtype == torch.float32
    out = half.forward(half.embed(batch), batch, hidden_states=True)
    assert out.logits.dtype == torch.float32  # hidden states stay as the model made them


def test_dtype_is_chosen_when_loading(tiny_dir, tiny_bert):
    assert load_model(str(tiny_dir), dtype="bfloat16").dtype == torch.bfloat16
    assert load_model(str(tiny_dir)).dtype == torch.float32
    with pytest.raises(TextlensError, match="unknown dtype 'float8': use one of float32"):
        load_model(str(tiny_dir), dtype="float8")
    with pytest.raises(TextlensError, match="textlens does not change a model it was given"):
        load_model(tiny_bert, dtype="bfloat16")
    assert explain(SENTENCES[0], str(tiny_dir), "gradient", dtype="float16").scores.size


def test_explain_takes_a_model_object_with_its_tokenizer(tokenizer):
    model = tiny_model("bert")
    exp = explain(SENTENCES[0], model, "gradient", tokenizer=tokenizer)
    assert exp.scores.shape[-1] == len(exp.tokens)

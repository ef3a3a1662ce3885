"""Relevance propagation (AttnLRP's rules): conservation on every wired architecture, a network
small enough to check by hand, nothing left changed, and one line for what it cannot do."""

import warnings

import numpy as np
import pytest
import torch
import transformers

from conftest import SENTENCES, tiny_model
from textlens import explain
from textlens.adapters import HFAdapter
from textlens.adapters.function import FunctionAdapter
from textlens.errors import TextlensError
from textlens.generation import explain_generation
from textlens.methods.relevance import ConservationWarning

TEXT = "A gripping, beautifully acted film that never lets go."
DECODER = {"num_key_value_heads": 1, "pad_token_id": 0, "bos_token_id": 101, "eos_token_id": 102}


def _decoder(arch: str, head: str, tokenizer) -> HFAdapter:
    """A tiny decoder of a family conftest does not build (Mistral, Qwen2), seeded, float64."""
    config = transformers.AutoConfig.for_model(
        arch, vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, initializer_range=0.2,
        num_labels=2, **DECODER,
    )  # fmt: skip
    auto = {
        "causal-lm": transformers.AutoModelForCausalLM,
        "sequence-classification": transformers.AutoModelForSequenceClassification,
    }[head]
    torch.manual_seed(0)
    return HFAdapter(auto.from_config(config).eval().double(), tokenizer, name=f"tiny-{arch}")


CASES = [
    ("bert", "sequence-classification"),
    ("roberta", "sequence-classification"),
    ("distilbert", "sequence-classification"),
    ("gpt2", "sequence-classification"),
    ("gpt2", "causal-lm"),
    ("llama", "sequence-classification"),
    ("llama", "causal-lm"),
    ("mistral", "causal-lm"),
    ("qwen2", "causal-lm"),
    ("qwen2", "sequence-classification"),
]


def _model(arch, head, tokenizer):
    if arch in ("mistral", "qwen2"):
        return _decoder(arch, head, tokenizer)
    return HFAdapter(tiny_model(arch, head).double(), tokenizer, name=f"tiny-{arch}")


@pytest.mark.parametrize(("arch", "head"), CASES)
def test_relevance_is_conserved(tokenizer, arch, head):
    """Input tokens' relevance plus what the rules absorb (biases, the attention softmax) plus
    what the target's own function of the logits keeps equals the target, in float64."""
    model = _model(arch, head, tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConservationWarning)
        exp = explain(TEXT, model, "relevance")
    total = exp.scores.sum() + exp.extras["absorbed"] + exp.extras["absorbed_by_target"]
    assert total == pytest.approx(exp.target.score, rel=1e-4)
    kinds = ("word", "position", "token_type", "other")
    parts = sum(exp.extras[k] for k in kinds if k in exp.extras)
    np.testing.assert_allclose(parts, exp.scores, rtol=1e-12, atol=1e-12)
    if head == "sequence-classification":  # a logit: the target keeps nothing for itself
        assert abs(float(exp.extras["absorbed_by_target"])) < 1e-9


@pytest.mark.parametrize(("arch", "head"), [("bert", "sequence-classification"),
                                            ("llama", "causal-lm")])  # fmt: skip
def test_every_layer_from_the_same_backward_pass(tokenizer, arch, head):
    model = _model(arch, head, tokenizer)
    tokens = explain(TEXT, model, "relevance")
    layered = explain(TEXT, model, "layer-relevance")
    assert layered.layers == tuple(range(model.n_layers + 1))
    np.testing.assert_allclose(layered.extras["input"], tokens.scores, rtol=1e-9, atol=1e-12)
    if head == "causal-lm":  # the last hidden state (after the final norm, which has no bias)
        # feeds the output layer (no bias): all the relevance the logits get passes through it
        at_logits = tokens.target.score - float(tokens.extras["absorbed_by_target"])
        assert layered.scores[-1].sum() == pytest.approx(at_logits, rel=1e-5)


def test_a_two_layer_linear_network_by_hand(tokenizer):
    """f(E) = W2 (W1 mean(E) + b1) + b2: LRP's epsilon rule (epsilon 0) gives token t the
    relevance (E_t / T) . (W1^T W2[c]) (gradient x input), and the biases b1 . W2[c] + b2[c]."""
    gen = torch.Generator().manual_seed(3)
    embeddings = torch.nn.Embedding(30522, 8).double()
    torch.nn.init.normal_(embeddings.weight, generator=gen)
    net = torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.Linear(5, 2)).double()
    for p in net.parameters():
        torch.nn.init.normal_(p, generator=gen)

    class Mean(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, e, mask):
            return self.net((e * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True))

    model = FunctionAdapter(Mean(), tokenizer, embeddings, labels=("neg", "pos"))
    exp = explain("a good film", model, "relevance", target="pos")
    batch = model.encode(["a good film"])
    e = embeddings(batch.input_ids[0]).detach()
    w1, b1 = net[0].weight.detach(), net[0].bias.detach()
    w2, b2 = net[1].weight.detach()[1], net[1].bias.detach()[1]
    by_hand = (e / len(e)) @ (w1.T @ w2)
    np.testing.assert_allclose(exp.scores, by_hand.numpy(), rtol=1e-10)
    assert float(exp.extras["absorbed"]) == pytest.approx(float(b1 @ w2 + b2), rel=1e-10)
    gxi = explain("a good film", model, "gradient-x-input", target="pos")
    np.testing.assert_allclose(exp.scores, gxi.scores, rtol=1e-10)  # linear: the same


def test_the_model_and_other_methods_are_unchanged(tiny_bert):
    def ours():  # hooks and replaced forwards of the rules (transformers adds hooks of its own)
        found = []
        for m in tiny_bert.model.modules():
            hooks = [*m._forward_hooks.values(), *m._forward_pre_hooks.values()]
            found += [h for h in hooks if h.__module__ == "textlens.methods.relevance"]
            found += ["forward"] if "forward" in vars(m) else []
        return found

    before = explain(SENTENCES[2], tiny_bert, "gradient-x-input")
    implementation = tiny_bert.model.config._attn_implementation
    explain(SENTENCES[2], tiny_bert, "relevance")
    explain(SENTENCES[2], tiny_bert, "layer-relevance")
    after = explain(SENTENCES[2], tiny_bert, "gradient-x-input")
    np.testing.assert_array_equal(before.scores, after.scores)
    assert tiny_bert.model.config._attn_implementation == implementation
    assert ours() == []


def test_a_generated_answer_shares_its_passes(tiny_lm_dir):
    from textlens.adapters.loading import load_model

    lm = load_model(str(tiny_lm_dir))
    gen = explain_generation("The capital of France is", lm, "relevance", continuation=" Paris")
    first = explain("The capital of France is", lm, "relevance", target=int(gen.token_ids[-1]))
    row = gen.matrix()[0, : gen.n_prompt]
    np.testing.assert_allclose(row, first.scores, rtol=1e-4, atol=1e-6)


def test_an_architecture_without_rules_is_one_line(tokenizer):
    albert = HFAdapter(tiny_model("albert"), tokenizer, name="tiny-albert")
    with pytest.raises(TextlensError, match=r"no rules for albert models .* it has them for "
                                            r"bert, distilbert, gpt2, llama"):  # fmt: skip
        explain(SENTENCES[0], albert, "relevance")


def test_a_function_the_rules_cannot_reach_is_reported(tokenizer):
    embeddings = torch.nn.Embedding(30522, 8)

    class Hidden(torch.nn.Module):  # GELU called as a function: no hook reaches it
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(8, 8), torch.nn.Linear(8, 2)

        def forward(self, e, mask):
            return self.b(torch.nn.functional.gelu(self.a(e.mean(1))))

    model = FunctionAdapter(Hidden(), tokenizer, embeddings)
    with pytest.warns(ConservationWarning, match="not conserved"):
        explain("a good film", model, "relevance")
    plain = FunctionAdapter(lambda e, m: e.sum((1, 2)).unsqueeze(1), tokenizer, embeddings)
    with pytest.raises(TextlensError, match=r"torch\.nn\.Module"):
        explain("a good film", plain, "relevance")

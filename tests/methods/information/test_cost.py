"""Cost on deep models: default layers, the cost estimate, progress and unsettled layers."""

import pytest

from conftest import SENTENCES, tiny_model
from textlens import explain, progress
from textlens.adapters.hf import HFAdapter
from textlens.methods import get_method
from textlens.methods.information.method import (
    DEEP,
    SPREAD,
    TYPICAL_ITERATIONS,
    UnsettledWarning,
    default_layers,
)

FAST = {"max_steps": 8, "corpus_size": 10, "corpus": "demo"}


def test_default_layers_spread_over_deep_models():
    assert default_layers(6) == tuple(range(1, 7))
    assert default_layers(DEEP) == tuple(range(1, DEEP + 1))
    deep = default_layers(30)
    assert len(deep) == SPREAD and deep[0] == 1 and deep[-1] == 30
    assert list(deep) == sorted(set(deep))


def test_a_deep_model_gets_the_spread_and_all_means_all(tokenizer):
    deep = HFAdapter(tiny_model("bert", num_hidden_layers=DEEP + 2), tokenizer, name="deep")
    exp = explain(SENTENCES[0], deep, "information-loss", **FAST)
    assert exp.layers == default_layers(DEEP + 2)
    every = explain(SENTENCES[0], deep, "information-loss", layers="all", **FAST)
    assert every.layers == tuple(range(1, DEEP + 3))
    assert "layers 1-14" in every.target.explained


def test_the_estimate_grows_with_depth_samples_and_steps(tiny_bert):
    batch = tiny_bert.encode([SENTENCES[0]])
    one = get_method("information-loss", layers=(2,), max_steps=300)
    two = get_method("information-loss", layers=(1, 2), max_steps=300)
    typical, most = one.estimate_seconds(tiny_bert, batch, 0.01)
    assert most / typical == pytest.approx(300 / TYPICAL_ITERATIONS)
    assert two.estimate_seconds(tiny_bert, batch, 0.01)[0] == pytest.approx(1.5 * typical)
    assert one.estimate_seconds(tiny_bert, batch, 0.02)[0] == pytest.approx(2 * typical)
    more = get_method("information-loss", layers=(2,), max_steps=300, n_samples=8)
    assert more.estimate_seconds(tiny_bert, batch, 0.01)[0] == pytest.approx(2 * typical)


def test_a_run_says_its_cost_then_each_layer_as_it_settles(tiny_bert):
    heard = []
    with progress.reporting(lambda message, seconds: heard.append((message, seconds))):
        explain(SENTENCES[0], tiny_bert, "information-loss", layers=(1, 2), max_steps=300,
                corpus="demo", corpus_size=10)  # fmt: skip
    assert heard[0][1] is not None and heard[0][1] > 0  # the estimate comes first
    assert "about" in heard[0][0] and "at most" in heard[0][0]
    settled = [m for m, s in heard if "settled after" in m]
    assert {m.split(" settled")[0] for m in settled} == {
        "information-loss: layer 1",
        "information-loss: layer 2",
    }
    explain(SENTENCES[0], tiny_bert, "gradient")  # nobody listens: nothing is said
    assert len(heard) == 3


def test_a_layer_that_runs_to_max_steps_is_named(tiny_bert):
    with pytest.warns(
        UnsettledWarning, match=r"max_steps=2 reached without settling at layer 1 \(1 of 1 text"
    ):
        explain(SENTENCES[0], tiny_bert, "information-loss", layers=(1,), max_steps=2,
                corpus="demo", corpus_size=10)  # fmt: skip


def test_the_help_says_how_layers_are_chosen():
    from textlens.methods import describe_methods

    info = next(m for m in describe_methods() if m["name"] == "information-loss")
    layers = next(p for p in info["params"] if p["name"] == "layers")
    assert "up to 12 layers deep" in layers["help"] and "8 layers spread" in layers["help"]
    assert layers["type"] == "numbers or all or none"
    corpus = next(p for p in info["params"] if p["name"] == "corpus")
    assert corpus["range"] is None and corpus["help"].startswith("Texts like the ones explained")

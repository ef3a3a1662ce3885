import numpy as np
import pytest

from conftest import SENTENCES
from textlens import Explanation, explain
from textlens.targets import TargetInfo


def _exp(scores, layered=False):
    text = "unbelievably good film."
    tokens = ("[CLS]", "un", "##believ", "##ably", "good", "film", ".", "[SEP]")
    offsets = ((0, 0), (0, 2), (2, 8), (8, 12), (13, 17), (18, 22), (22, 23), (0, 0))
    special = (True, False, False, False, False, False, False, True)
    return Explanation(
        text=text,
        tokens=tokens,
        offsets=offsets,
        special=special,
        scores=np.array(scores, dtype=float),
        axes=("layer", "token") if layered else ("token",),
        layers=(1, 2) if layered else None,
        method="gradient-x-input",
        target=TargetInfo("class-logit", "fresh", 1, 2.0, 0.9),
    )


def test_to_words_merges_pieces_and_drops_specials():
    exp = _exp([9, 1, 2, 3, 4, 5, 6, 9])
    words = exp.to_words("sum")
    assert words.tokens == ("unbelievably", "good", "film", ".")
    np.testing.assert_array_equal(words.scores, [6, 4, 5, 6])
    np.testing.assert_array_equal(words.extras["subword_scores"], exp.scores)
    np.testing.assert_array_equal(words.extras["subword_word_index"], [-1, 0, 0, 0, 1, 2, 3, -1])
    assert words.offsets[0] == (0, 12)
    assert exp.to_words("mean").scores[0] == 2
    assert exp.to_words("max").scores[0] == 3
    l2 = exp.to_words("l2")
    assert l2.scores[0] == pytest.approx(np.sqrt(14)) and not l2.signed
    assert exp.level == "subword"  # unchanged


def test_to_words_on_layered_scores():
    exp = _exp([[0, 1, 1, 1, 2, 3, 4, 0], [0, 2, 2, 2, 1, 1, 1, 0]], layered=True)
    words = exp.to_words()
    np.testing.assert_array_equal(words.scores, [[3, 2, 3, 4], [6, 1, 1, 1]])
    assert words.select([2]).scores.shape == (1, 4)
    assert words.top(1, layer=2) == [("unbelievably", 6.0)]


def test_shape_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match="do not fit"):
        _exp([1, 2, 3])


def test_unknown_schema_is_refused():
    with pytest.raises(ValueError, match=r"textlens\.explanation/1"):
        Explanation.from_dict({"schema": "other/9"})


def test_nan_survives_strict_json():
    exp = _exp([np.nan, 1, 2, 3, 4, 5, 6, 0])
    back = Explanation.from_json(exp.to_json())
    assert np.isnan(back.scores[0]) and back.scores[1] == 1


def test_words_of_a_real_explanation(tiny_bert):
    exp = explain("An unwatchable, overlong mess.", tiny_bert, "gradient-x-input")
    words = exp.to_words()
    assert words.tokens == ("An", "unwatchable", ",", "overlong", "mess", ".")
    assert words.scores.sum() == pytest.approx(exp.scores[~np.array(exp.special)].sum())


def test_to_words_keeps_per_layer_extras_when_layers_equal_tokens(tiny_bert):
    """3 layers and a 3-token text: per-layer extras must not be taken for per-token ones."""
    exp = explain("good", tiny_bert, "information-loss", layers=(0, 1, 2), max_steps=8,
                  corpus_size=20)  # fmt: skip
    assert len(exp.tokens) == 3 and exp.scores.shape == (3, 3)
    words = exp.to_words()
    for name in ("steps", "loss", "start_loss"):
        assert name in words.extras and f"subword_{name}" not in words.extras
        np.testing.assert_array_equal(words.extras[name], exp.extras[name])
    assert words.extra_axes["steps"] == ("layer",)
    assert words.extras["subword_sigma"].shape == (3, 3)
    assert words.extra_axes["subword_sigma"] == ("layer", "subword")


def test_select_cuts_every_per_layer_extra(tiny_bert):
    info = explain(SENTENCES[0], tiny_bert, "information-loss", layers=(0, 1, 2), max_steps=8,
                   corpus_size=20)  # fmt: skip
    one = info.select([2])
    assert one.extras["steps"].shape == (1,) and one.extras["loss"].shape == (1,)
    assert one.extras["steps"][0] == info.extras["steps"][2]
    assert one.extras["sigma"].shape == (1, len(info.tokens))
    assert one.extras["loss_curve"].shape[0] == 1
    units = explain(SENTENCES[0], tiny_bert, "layer-conductance", n_steps=4, keep_units=True)
    picked = units.select([2])
    assert units.extras["unit_scores"].shape[0] == 2
    assert picked.extras["unit_scores"].shape == (1, *units.extras["unit_scores"].shape[1:])
    np.testing.assert_array_equal(picked.extras["unit_scores"][0], units.extras["unit_scores"][1])


def test_extra_axes_survive_json(tiny_bert):
    info = explain(SENTENCES[1], tiny_bert, "information-loss", max_steps=8, corpus_size=20)
    back = Explanation.from_json(info.to_json())
    assert back.extra_axes == info.extra_axes and back.extra_axes["steps"] == ("layer",)
    assert back.select([1]).extras["steps"].shape == (1,)


def test_an_explanation_converts_to_a_data_frame(tiny_bert):
    exp = explain(SENTENCES[0], tiny_bert, "gradient")
    frame = exp.to_frame()
    assert list(frame["token"]) == list(exp.tokens)
    np.testing.assert_allclose(frame["score"].to_numpy(), exp.scores)
    layered = explain(SENTENCES[0], tiny_bert, "attention")
    by_layer = layered.to_frame()
    assert len(by_layer) == len(layered.tokens) * len(layered.layers)
    assert sorted(set(by_layer["layer"])) == list(layered.layers)

import numpy as np
import pytest

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

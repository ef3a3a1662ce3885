"""The layer analysis: group summaries with known answers."""

import numpy as np

from textlens.evaluate.layers import group_summary


def test_group_summary_known_answers():
    # two sentences, two layers; the second sentence is shifted by -100 nats everywhere (as a
    # longer sentence would be): the relative measure ignores the shift, the absolute one not
    first = (["special", "sentiment", "function", "special"], np.array([[0, -10, 10, 0]] * 2))
    second = (["special", "sentiment", "function", "function", "special"],
              np.array([[-100, -110, -90, -90, -100], [-100, -120, -90, -90, -100]]))  # fmt: skip
    out = group_summary([first, second], n_resamples=200)
    assert out.tokens == {
        "sentiment": 2, "function": 3, "other words": 0, "punctuation": 0, "special": 4,
    }  # fmt: skip
    assert out.mean_information_nats["other words"] is None
    assert out.relative_information_nats["punctuation"] is None
    np.testing.assert_allclose(out.mean_information_nats["sentiment"], [-60, -65])
    # relative: sentence means are 0 | -98 and -100; sentiment -10, -12 (layer 1); -10, -20
    rel = out.relative_information_nats["sentiment"]
    np.testing.assert_allclose(rel["mean"], [-11, -15])
    assert rel["low"][1] <= -15 <= rel["high"][1] and rel["low"][1] >= -20 - 1e-9
    np.testing.assert_allclose(out.relative_information_nats["function"]["mean"],
                               [(10 + 8 + 8) / 3, (10 + 10 + 10) / 3])  # fmt: skip

"""SmoothGrad: a wrapper that reduces to its base without noise."""

import numpy as np
import pytest

from conftest import SENTENCES
from textlens import explain
from textlens.errors import TextlensError


def test_smoothgrad_without_noise_equals_its_base(tiny_bert):
    for base in ("gradient", "gradient-x-input"):
        plain = explain(SENTENCES[2], tiny_bert, base)
        smooth = explain(SENTENCES[2], tiny_bert, "smoothgrad", base=base, noise_std=0.0)
        np.testing.assert_allclose(smooth.scores, plain.scores, atol=1e-6)


def test_smoothgrad_seed_matters(tiny_bert):
    a = explain(SENTENCES[2], tiny_bert, "smoothgrad", noise_std=0.1, seed=1)
    b = explain(SENTENCES[2], tiny_bert, "smoothgrad", noise_std=0.1, seed=2)
    assert not np.allclose(a.scores, b.scores)


def test_smoothgrad_rejects_a_base_it_cannot_wrap():
    from textlens import get_method

    with pytest.raises(TextlensError, match="cannot wrap"):
        get_method("smoothgrad", base="occlusion")

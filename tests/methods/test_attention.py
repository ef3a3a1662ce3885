"""Attention: rows that are distributions."""

import numpy as np
import pytest

from conftest import SENTENCES
from textlens import explain
from textlens.errors import TextlensError


def test_attention_rows_are_distributions(tiny_bert):
    exp = explain(SENTENCES[2], tiny_bert, "attention", query="mean")
    np.testing.assert_allclose(exp.scores.sum(axis=-1), 1.0, atol=1e-5)
    with pytest.raises(TextlensError, match="out of range"):
        explain(SENTENCES[0], tiny_bert, "attention", layers=(3,))

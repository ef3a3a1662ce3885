import warnings

import pytest

from conftest import SENTENCES
from textlens import explain, explain_many
from textlens.adapters import TruncationWarning
from textlens.errors import TextlensError


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_or_blank_text(tiny_bert, text):
    with pytest.raises(TextlensError, match="empty"):
        explain(text, tiny_bert, "gradient")


def test_too_long_text_is_truncated_with_one_warning(tiny_bert):
    long = "good " * 400
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exps = explain_many([long, long, SENTENCES[0]], tiny_bert, "gradient")
    cut = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(cut) == 1
    assert "kept the first 128 tokens" in str(cut[0].message)
    assert len(exps[0].tokens) == 128


def test_unknown_method_lists_the_registry(tiny_bert):
    with pytest.raises(TextlensError, match="available: attention, embedding-integrated"):
        explain(SENTENCES[0], tiny_bert, "lime")


def test_unknown_setting_names_the_valid_ones(tiny_bert):
    with pytest.raises(TextlensError, match="its settings: baseline, internal_batch_size, n_steps"):
        explain(SENTENCES[0], tiny_bert, "integrated-gradients", steps=3)


def test_a_string_is_not_a_list_of_texts(tiny_bert):
    with pytest.raises(TextlensError, match="list of texts"):
        explain_many("a film", tiny_bert, "gradient")

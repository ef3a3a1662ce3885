"""Tokens are shown as the text they cover, not as the vocabulary's markers or bytes."""

import json

from conftest import tiny_model
from textlens import explain
from textlens.adapters import HFAdapter
from textlens.adapters.encoding import readable_token


def test_byte_level_tokens_show_the_text_they_cover(byte_tokenizer):
    lm = HFAdapter(tiny_model("gpt2", "causal-lm"), byte_tokenizer)
    text = "The capital of France is a café"
    raw = byte_tokenizer.convert_ids_to_tokens(byte_tokenizer(text)["input_ids"])
    assert any(t.startswith("Ġ") for t in raw) and any("Ã" in t for t in raw)
    batch = lm.encode([text])
    tokens, offsets = batch.tokens[0], batch.offsets[0]
    assert not any("Ġ" in t or "Ã" in t for t in tokens)
    for token, (a, b) in zip(tokens, offsets, strict=True):
        covered = text[a:b].strip()
        assert token == covered if covered else set(token) == {"\u2423"}  # a lone space
    assert "France" in tokens and any("é" in t for t in tokens)
    exp = explain(text, lm, "gradient")
    assert exp.tokens == tokens
    assert json.loads(exp.to_json())["tokens"] == list(tokens)
    assert "Ġ" not in exp._repr_html_()


def test_wordpiece_and_lower_case_tokens_stay_as_they_are(tokenizer, tiny_bert):
    batch = tiny_bert.encode(["Unbelievably GOOD film"])
    assert batch.tokens[0][0] == "[CLS]" and "good" in batch.tokens[0]
    assert any(t.startswith("##") for t in batch.tokens[0])


def test_readable_token_rules():
    assert readable_token("ĠParis", "Paris") == readable_token("ĠParis", " Paris") == "Paris"
    assert readable_token("##ing", "ing") == "##ing"
    assert readable_token("good", "GOOD") == "good"
    assert readable_token("fÃ©", "fé") == "fé"
    assert readable_token("Ġ", " ") == "\u2423"
    assert readable_token("Ċ", "\n") == "\\n"

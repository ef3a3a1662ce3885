"""The models users already hold: pipelines, SentenceTransformers, PEFT adapters, cached ids,
multi-label classifiers, models placed by their loader; and question answering within the
context."""

import json

import numpy as np
import pytest
import torch
import transformers

from conftest import SENTENCES, tiny_model
from textlens import explain, zoo
from textlens.adapters import HFAdapter
from textlens.adapters.loading import load_model
from textlens.errors import TextlensError
from textlens.pipeline import explain_pair
from textlens.targets import ClassTarget


def test_a_transformers_pipeline_is_explained_as_its_model(tokenizer, tiny_bert):
    pipe = transformers.pipeline("text-classification", model=tiny_bert.model, tokenizer=tokenizer)
    adapter = load_model(pipe)
    assert adapter.model is pipe.model and adapter.task == "sequence-classification"
    direct = explain(SENTENCES[0], tiny_bert, "gradient-x-input")
    np.testing.assert_allclose(explain(SENTENCES[0], pipe, "gradient-x-input").scores,
                               direct.scores, rtol=1e-6)  # fmt: skip


def test_a_sentence_transformer_keeps_its_pooling():
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(zoo.encoder_path()), device="cpu")
    adapter = load_model(st)
    assert adapter.pooling == "mean" and adapter.task == "base"
    a, b = "A man is playing a guitar.", "Someone plays an instrument."
    first, second = explain_pair(a, b, st, "gradient")
    vectors = st.encode([a, b], convert_to_tensor=True)
    cosine = float(torch.nn.functional.cosine_similarity(vectors[0], vectors[1], dim=0))
    assert first.target.score == pytest.approx(cosine, abs=1e-4)
    assert second.target.score == pytest.approx(cosine, abs=1e-4)


def test_a_peft_adapter_folder_as_loaded_or_merged(tmp_path, tiny_dir, tokenizer):
    from peft import LoraConfig, get_peft_model

    base = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_dir)
    config = LoraConfig(r=4, target_modules=["query", "value"], task_type="SEQ_CLS",
                        init_lora_weights=False)  # fmt: skip
    lora = get_peft_model(base, config)
    folder = tmp_path / "adapter"
    lora.save_pretrained(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tiny_dir)  # a local base: nothing to download
    (folder / "adapter_config.json").write_text(json.dumps(config))
    as_loaded = explain(SENTENCES[0], str(folder), "gradient-x-input")
    merged = explain(SENTENCES[0], load_model(str(folder), merge=True), "gradient-x-input")
    np.testing.assert_allclose(as_loaded.scores, merged.scores, rtol=1e-4, atol=1e-6)
    plain = explain(SENTENCES[0], str(tiny_dir), "gradient-x-input")
    assert not np.allclose(as_loaded.scores, plain.scores)  # the adapter changes the model


def test_a_model_id_from_the_local_cache_never_downloaded(tmp_path, tiny_dir, monkeypatch):
    snapshot = tmp_path / "hub" / "models--someone--tiny-bert" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for item in tiny_dir.iterdir():
        (snapshot / item.name).write_bytes(item.read_bytes())
    refs = tmp_path / "hub" / "models--someone--tiny-bert" / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    adapter = load_model("someone/tiny-bert")
    assert adapter.name == "someone/tiny-bert" and adapter.task == "sequence-classification"
    with pytest.raises(TextlensError, match="never downloads"):
        load_model("someone/not-there")


def test_a_multi_label_classifier_gets_sigmoid_probabilities(tokenizer):
    labels = {"id2label": {0: "a", 1: "b", 2: "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}
    model = tiny_model("bert", num_labels=3, problem_type="multi_label_classification", **labels)
    adapter = HFAdapter(model, tokenizer, name="tiny-multi")
    exp = explain(SENTENCES[0], adapter, "gradient", target="b")
    batch = adapter.encode([SENTENCES[0]])
    with torch.no_grad():
        logits = adapter.forward(adapter.embed(batch), batch).logits[0]
    assert exp.target.probability == pytest.approx(float(logits[1].sigmoid()), rel=1e-5)
    probs = adapter.class_probabilities(SENTENCES[0])
    assert probs["a"] == pytest.approx(float(logits[0].sigmoid()), rel=1e-5)
    assert sum(probs.values()) != pytest.approx(1.0, abs=1e-3)  # independent labels


@pytest.fixture(scope="module")
def multi_label(tokenizer):
    labels = {"id2label": {0: "a", 1: "b", 2: "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}
    model = tiny_model("bert", num_labels=3, problem_type="multi_label_classification", **labels)
    return HFAdapter(model, tokenizer, name="tiny-multi")


def test_several_labels_at_once_each_explained_by_its_own_sigmoid(multi_label):
    from textlens import explain_labels, explain_many

    every = explain_labels(SENTENCES[0], multi_label, "gradient-x-input", output="probability")
    assert [e.target.label for e in every] == ["a", "b", "c"]
    probs = multi_label.class_probabilities(SENTENCES[0])
    for exp in every:  # each the same as that label alone, by its sigmoid probability
        one = ClassTarget(exp.target.label, output="probability")
        alone = explain(SENTENCES[0], multi_label, "gradient-x-input", target=one)
        np.testing.assert_allclose(exp.scores, alone.scores, rtol=1e-5, atol=1e-7)
        assert exp.target.probability == pytest.approx(probs[exp.target.label], rel=1e-5)
    assert not np.allclose(every[0].scores, every[1].scores)
    two = explain_many([SENTENCES[0], SENTENCES[1]], multi_label, "gradient", target=["c", "a"])
    assert [(e.text, e.target.label) for e in two] == [
        (SENTENCES[0], "c"),
        (SENTENCES[0], "a"),
        (SENTENCES[1], "c"),
        (SENTENCES[1], "a"),
    ]
    with pytest.raises(TextlensError, match="use explain_labels"):
        explain(SENTENCES[0], multi_label, "gradient", target=["a", "b"])


def test_several_labels_from_the_command_line(multi_label, tmp_path):
    from click.testing import CliRunner

    from textlens.cli import main

    folder = tmp_path / "multi"
    multi_label.model.save_pretrained(folder)
    multi_label.tokenizer.save_pretrained(folder)
    out = tmp_path / "labels.json"
    result = CliRunner().invoke(main, ["explain", SENTENCES[0], "--model", str(folder),
                                       "--method", "gradient", "--target", "a,c",
                                       "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "explaining: c" in result.output
    data = json.loads(out.read_text())
    assert [e["target"]["label"] for e in data["items"]] == ["a", "c"]
    bad = CliRunner().invoke(main, ["explain", SENTENCES[0], "--model", str(folder),
                                    "--target", "a,zzz"])  # fmt: skip
    assert bad.exit_code != 0 and "unknown label 'zzz'" in bad.output
    texts = tmp_path / "texts.txt"
    texts.write_text(SENTENCES[0] + "\n" + SENTENCES[1] + "\n")
    args = ["explain-file", str(texts), "--model", str(folder), "--target", "a,c"]
    job = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o.jsonl")])
    assert job.exit_code != 0 and "one --target per row" in job.output
    assert not (tmp_path / "o.jsonl").exists()


def test_a_model_placed_by_its_loader_is_never_moved(tiny_bert, tokenizer, monkeypatch):
    model = tiny_model("bert")
    model.hf_device_map = {"": "cpu"}  # as device_map="auto" leaves it

    def moved(*args, **kwargs):
        raise AssertionError("the model was moved")

    monkeypatch.setattr(model, "to", moved)
    adapter = HFAdapter(model, tokenizer, device="cpu")
    assert adapter.device.type == "cpu" and explain(SENTENCES[0], adapter, "gradient").scores.size


def test_an_answer_span_lies_in_the_context(tokenizer):
    model = tiny_model("bert", "question-answering")
    adapter = HFAdapter(model, tokenizer, name="tiny-qa")
    question, context = "Who plays?", "A man plays a guitar in the park."
    exp = explain((question, context), adapter, "gradient")
    start = len(question) + 1
    a, _ = exp.offsets[exp.target.index]
    assert a >= start and not exp.special[exp.target.index]

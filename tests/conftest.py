"""Shared fixtures: tiny models built from configs (no weights downloaded), the real tokenizer."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from textlens import zoo
from textlens.adapters import HFAdapter

SENTENCES = [
    "A gripping, beautifully acted film.",
    "Dull.",
    "The plot makes no sense and the jokes fall flat, but the score is lovely.",
]
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}
ARCHITECTURES = {
    "bert": dict(TINY),
    "roberta": dict(TINY, max_position_embeddings=130, pad_token_id=0),
    "distilbert": {
        "dim": 32,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dim": 64,
        "max_position_embeddings": 128,
    },
    "albert": dict(TINY, embedding_size=16),
    "electra": dict(TINY, embedding_size=16),
    "deberta-v2": dict(
        TINY,
        type_vocab_size=2,
        position_biased_input=True,
        relative_attention=True,
        max_relative_positions=64,
    ),
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 128, "pad_token_id": 0},
    "llama": dict(TINY, num_key_value_heads=1, pad_token_id=0, bos_token_id=101, eos_token_id=102),
}


@pytest.fixture(scope="session")
def tokenizer():
    """The packaged MiniLM's WordPiece tokenizer, shared by every tiny model."""
    return transformers.AutoTokenizer.from_pretrained(zoo.encoder_path(), local_files_only=True)


def tiny_model(model_type: str, head: str = "sequence-classification", seed: int = 0, **extra):
    """A randomly initialised tiny model of ``model_type`` with the given head (seeded)."""
    cfg = transformers.AutoConfig.for_model(
        model_type, **{"vocab_size": 30522, **ARCHITECTURES[model_type], **extra}
    )
    if head == "sequence-classification" and "num_labels" not in extra:
        cfg.num_labels = 2
        cfg.id2label = {0: "negative", 1: "positive"}
        cfg.label2id = {"negative": 0, "positive": 1}
    auto = {
        "sequence-classification": transformers.AutoModelForSequenceClassification,
        "question-answering": transformers.AutoModelForQuestionAnswering,
        "token-classification": transformers.AutoModelForTokenClassification,
        "causal-lm": transformers.AutoModelForCausalLM,
        "base": transformers.AutoModel,
    }[head]
    torch.manual_seed(seed)
    return auto.from_config(cfg, attn_implementation="eager").eval()


@pytest.fixture(scope="session")
def byte_tokenizer():
    """A byte-level BPE tokenizer like GPT-2's and Llama's (``Ġ`` markers, bytes such as ``Ã©``,
    no pad, mask or unknown token), trained here on a few sentences: nothing is downloaded."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer(trim_offsets=True)
    texts = [*SENTENCES, "The capital of France is Paris.", "a café, naïve and à la mode"]
    bpe.train_from_iterator(
        texts * 5, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )


@pytest.fixture(scope="session")
def tiny_bert(tokenizer) -> HFAdapter:
    """A tiny 2-layer BERT sentiment classifier with random weights."""
    return HFAdapter(tiny_model("bert"), tokenizer, name="tiny-bert")


@pytest.fixture(scope="session")
def demo() -> HFAdapter:
    """The real demo classifier (built on first use, then cached)."""
    return HFAdapter(*zoo.load_sentiment_classifier()[:2], name="demo")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tokenizer):
    """The tiny BERT saved as a model folder, for the console script and the server."""
    path = tmp_path_factory.mktemp("tiny")
    tiny_model("bert").save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory, byte_tokenizer):
    """A tiny GPT-2 with a byte-level tokenizer, saved as a model folder."""
    path = tmp_path_factory.mktemp("tiny-lm")
    end = byte_tokenizer.eos_token_id
    model = tiny_model(
        "gpt2", "causal-lm", vocab_size=len(byte_tokenizer), bos_token_id=end, eos_token_id=end
    )
    model.save_pretrained(path)
    byte_tokenizer.save_pretrained(path)
    return path


def pytest_configure(config):
    """``TEXTLENS_TEST_THREADS=N`` runs the suite with N torch threads (CI runs it with 1 too)."""
    threads = os.environ.get("TEXTLENS_TEST_THREADS")
    if threads:
        torch.set_num_threads(int(threads))


def pytest_collection_modifyitems(config, items):
    """``TEXTLENS_TEST_ORDER=reverse`` runs the tests in reverse order (a result must not
    depend on what ran before it)."""
    if os.environ.get("TEXTLENS_TEST_ORDER") == "reverse":
        items.reverse()


CHROMIUM = "/usr/bin/chromium"
TEXTLENS = shutil.which("textlens") or str(Path(sys.executable).parent / "textlens")
"""The console script of the environment running the tests."""


def run_cli(*args: str, check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real console script offline; with ``check``, it must exit 0."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [TEXTLENS, *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def chromium():
    """Headless Chromium (Debian's package, driven by playwright), for one test.

    (Playwright's sync API holds an event loop while it is open, so it is closed after each
    test: other tests start event loops of their own.)

    Where it is not installed the browser tests are skipped with one line saying so; under CI
    (``CI=true``) they fail instead, so that CI always runs them.
    """
    if not Path(CHROMIUM).exists():
        message = (
            f"headless Chromium is not installed ({CHROMIUM}): `make browser` installs Debian's "
            "chromium; the browser tests did not run"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def local_client(app):
    """A test client that speaks to ``app`` as a browser on this machine does (Host 127.0.0.1)."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1:8000")

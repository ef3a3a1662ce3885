"""Demo classifier: build time from scratch on this machine and accuracy on the test split.

Builds into a fresh temporary TEXTLENS_HOME (the user's cache is not touched), so the build
seconds are those of a first run. Targets: accuracy >= 0.80 on the 2,000-sentence test split,
build <= 240 s on a 2-core CPU.

    python benchmarks/classifier.py [--lr 1e-4] [--epochs 1.0] [--max-length 64] [--keep]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import write_result


def accuracy(model, tokenizer, texts, labels, batch_size: int = 128) -> float:
    import numpy as np
    import torch

    from textlens.zoo import pad_batch

    ids = tokenizer(list(texts), truncation=True, max_length=128)["input_ids"]
    order = np.argsort([len(r) for r in ids])
    predicted = np.zeros(len(ids), dtype=int)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            input_ids, mask = pad_batch([ids[i] for i in index], tokenizer.pad_token_id)
            logits = model(input_ids=input_ids, attention_mask=mask).logits
            predicted[index] = logits.argmax(-1).numpy()
    return float((predicted == np.array(labels)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="build into $TEXTLENS_HOME instead")
    args = parser.parse_args()

    from textlens import data, zoo

    overrides = {
        k: v
        for k, v in {
            "learning_rate": args.lr,
            "epochs": args.epochs,
            "max_length": args.max_length,
        }.items()
        if v is not None
    }
    recipe = zoo.Recipe(**overrides)
    home = None if args.keep else tempfile.mkdtemp(prefix="textlens-bench-")
    if home:
        os.environ["TEXTLENS_HOME"] = home
    started = time.perf_counter()
    model, tokenizer, path = zoo.load_sentiment_classifier(recipe)
    wall = time.perf_counter() - started
    manifest = zoo.read_manifest(path)
    test = data.rotten_tomatoes("test")
    began = time.perf_counter()
    acc = accuracy(model, tokenizer, test.texts, test.labels)
    eval_s = time.perf_counter() - began
    majority = max(sum(test.labels), len(test) - sum(test.labels)) / len(test)
    print(f"recipe              {recipe}")
    print(f"build seconds       {manifest['build_seconds']:.1f}  (load + build + save: {wall:.1f})")
    print(f"test accuracy       {acc:.4f}  (2,000 sentences; majority class {majority:.4f})")
    print(f"test eval seconds   {eval_s:.1f}")
    write_result(
        "classifier",
        {
            "recipe": manifest["recipe"],
            "build_seconds": manifest["build_seconds"],
            "build_wall_seconds": round(wall, 2),
            "test_accuracy": round(acc, 4),
            "test_sentences": len(test),
            "eval_seconds": round(eval_s, 2),
            "targets": {"test_accuracy_min": 0.80, "build_seconds_max": 240},
        },
        peers={"majority_class_accuracy": round(majority, 4)},
    )
    if home:
        import shutil

        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

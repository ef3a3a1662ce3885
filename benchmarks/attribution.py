"""Attribution speed and memory on the demo classifier.

1. Integrated gradients (n_steps=50) over the first 64 test sentences in one batched call,
   against Captum's LayerIntegratedGradients called one sentence at a time as in its BERT
   tutorial, in the same run; the largest difference between the two is reported too.
2. Seconds per sentence for every method at about 20, 128 and 512 tokens, with the peak
   resident memory during each call.

    python benchmarks/attribution.py [--n 64] [--skip-lengths]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import PeakRSS, write_result


def text_of_tokens(tokenizer, n_tokens: int, pool: list[str]) -> str:
    """Join test sentences until the text has about ``n_tokens`` tokens (specials included)."""
    words: list[str] = []
    for sentence in pool:
        words.extend(sentence.split())
        if len(tokenizer(" ".join(words))["input_ids"]) >= n_tokens:
            break
    while len(tokenizer(" ".join(words))["input_ids"]) > n_tokens:
        words.pop()
    return " ".join(words)


def compare_with_captum(demo, texts: list[str]) -> dict:
    import numpy as np
    import torch
    from captum.attr import LayerIntegratedGradients

    from textlens import explain_many

    started = time.perf_counter()
    ours = explain_many(texts, demo, "integrated-gradients", n_steps=50, batch_size=len(texts))
    ours_s = time.perf_counter() - started

    def forward(ids, mask, types):
        return demo.model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits

    lig = LayerIntegratedGradients(forward, demo.word_embeddings)
    started = time.perf_counter()
    theirs = []
    for text in texts:  # the tutorial's loop: encode, predict, attribute with delta
        batch = demo.encode([text])
        with torch.no_grad():
            predicted = int(
                forward(batch.input_ids, batch.attention_mask, batch.token_type_ids).argmax()
            )
        attr, _ = lig.attribute(
            inputs=batch.input_ids,
            baselines=demo.baseline_ids(batch),
            additional_forward_args=(batch.attention_mask, batch.token_type_ids),
            target=predicted,
            n_steps=50,
            return_convergence_delta=True,
        )
        theirs.append(attr.sum(-1)[0].detach().numpy())
    captum_s = time.perf_counter() - started
    diff = max(float(np.abs(e.scores - t).max()) for e, t in zip(ours, theirs, strict=True))
    return {
        "sentences": len(texts),
        "tokens_mean": float(np.mean([len(e.tokens) for e in ours])),
        "ours_seconds": round(ours_s, 3),
        "captum_seconds": round(captum_s, 3),
        "ours_sentences_per_s": round(len(texts) / ours_s, 3),
        "captum_sentences_per_s": round(len(texts) / captum_s, 3),
        "speedup": round(captum_s / ours_s, 3),
        "max_abs_difference": diff,
    }


def per_method(demo, pool: list[str], lengths: list[int]) -> dict:
    from textlens import METHODS, explain

    table: dict = {}
    for n_tokens in lengths:
        text = text_of_tokens(demo.tokenizer, n_tokens, pool)
        explain(text, demo, "gradient")  # warm-up at this length
        for name in sorted(METHODS):
            with PeakRSS() as mem:
                started = time.perf_counter()
                exp = explain(text, demo, name)
                seconds = time.perf_counter() - started
            table.setdefault(name, {})[str(n_tokens)] = {
                "tokens": len(exp.tokens),
                "seconds": round(seconds, 3),
                "peak_rss_gib": round(mem.peak / 2**30, 3),
                "rss_increase_gib": round((mem.peak - mem.start) / 2**30, 3),
            }
            print(
                f"{name:32s} {len(exp.tokens):4d} tokens  {seconds:8.2f} s  "
                f"peak RSS {mem.peak / 2**30:5.2f} GiB",
                flush=True,
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--skip-lengths", action="store_true")
    args = parser.parse_args()

    from textlens import data
    from textlens.adapters import HFAdapter
    from textlens.zoo import load_sentiment_classifier

    model, tokenizer, _ = load_sentiment_classifier()
    demo = HFAdapter(model, tokenizer, name="demo")
    test = list(data.rotten_tomatoes("test").texts)
    ig = compare_with_captum(demo, test[: args.n])
    print(
        f"IG, {ig['sentences']} sentences (mean {ig['tokens_mean']:.1f} tokens), n_steps=50: "
        f"ours {ig['ours_seconds']:.1f} s, Captum one at a time {ig['captum_seconds']:.1f} s, "
        f"speed-up {ig['speedup']:.2f}x, max |difference| {ig['max_abs_difference']:.1e}"
    )
    lengths = {} if args.skip_lengths else per_method(demo, test, [20, 128, 512])
    write_result(
        "attribution",
        {
            "integrated_gradients_batch": {
                k: v for k, v in ig.items() if not k.startswith("captum")
            },
            "per_method": lengths,
        },
        peers={
            "captum_layer_integrated_gradients_one_at_a_time": {
                "seconds": ig["captum_seconds"],
                "sentences_per_s": ig["captum_sentences_per_s"],
            }
        },
    )


if __name__ == "__main__":
    main()

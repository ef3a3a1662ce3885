"""Relevance propagation (AttnLRP's rules) against integrated gradients, occlusion and random.

In one run on this machine:

1. The demo classifier, the first ``--n`` Rotten Tomatoes test sentences (``textlens evaluate``'s
   comparison, token deletion): comprehensiveness, sufficiency and deletion AUC with 95%
   bootstrap intervals, and seconds per sentence, for ``relevance``, integrated gradients (50
   steps), occlusion and random. Also the share of the explained logit the rules absorb
   (biases and the attention softmax), median over the sentences.
2. SmolLM2-135M-Instruct (float32): the LLM benchmark's prompt and its greedy answer of
   ``--tokens`` tokens. Every method explains each output token by the prompt's tokens (the
   earlier output tokens kept as context, Captum's semantics); removing the ``k`` prompt tokens
   with the highest scores (k = 1, 3, 5), the drop of that output token's log-probability,
   averaged over the output tokens (higher = the scores found what the answer depends on).
   Seconds per output token for ``relevance`` and integrated gradients (``--n-steps`` points),
   and for Captum 0.9's ``LLMGradientAttribution(LayerIntegratedGradients)`` on the same answer.
   The share of each output token's log-probability the rules absorb, and the share the
   log-softmax keeps (``absorbed_by_target``), medians.

    python benchmarks/relevance.py [--n 200] [--tokens 20] [--n-steps 32]
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

from _common import write_result
from llm import PROMPT, runners

CLASSIFIER_METHODS = ("relevance", "integrated-gradients", "occlusion", "random")
LM_METHODS = {
    "relevance": {},
    "integrated-gradients": {"baseline": "pad"},
    "gradient-x-input": {},
    "occlusion": {},
}
KS = (1, 3, 5)


def classifier(n: int) -> dict:
    import numpy as np

    from textlens import explain_many, load_model
    from textlens.data import rotten_tomatoes
    from textlens.evaluate.comparison import compare_methods

    result = compare_methods(None, n, list(CLASSIFIER_METHODS), progress=False, naopc=False)
    rows = {}
    for name, summary in result.methods.items():
        metrics = {k: summary.metrics[k].to_dict() for k in
                   ("comprehensiveness", "sufficiency", "deletion_auc")}  # fmt: skip
        rows[name] = {"seconds_per_sentence": summary.seconds_per_example, **metrics}
        c = metrics["comprehensiveness"]
        print(f"{name}: comprehensiveness {c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}], "
              f"{summary.seconds_per_example:.3f} s/sentence", flush=True)  # fmt: skip
    demo = load_model(None)
    texts = list(rotten_tomatoes("test").texts[:n])
    exps = explain_many(texts, demo, "relevance")
    shares = [abs(float(e.extras["absorbed"])) / max(1e-9, abs(e.target.score)) for e in exps]
    rows["relevance"]["absorbed_share_median"] = float(np.median(shares))
    print(f"relevance: median |absorbed| / |logit| {np.median(shares):.3f}", flush=True)
    return rows


def removal_drops(adapter, prompt_ids, out_ids, matrix, ks, rng=None) -> dict[int, float]:
    """The mean drop of each output token's log-probability when the prompt tokens with the
    ``k`` highest scores in its row (random ones with ``rng``) are removed."""
    import numpy as np
    import torch

    n_prompt = len(prompt_ids)
    drops: dict[int, list[float]] = {k: [] for k in ks}
    with torch.no_grad():
        for j, token in enumerate(out_ids):
            context = list(out_ids[:j])
            full = torch.tensor([prompt_ids + context])
            base = adapter.model(full).logits[0, -1].log_softmax(-1)[token]
            row = np.asarray(matrix[j, :n_prompt], float)
            order = rng.permutation(n_prompt) if rng is not None else np.argsort(-row)
            for k in ks:
                gone = set(order[:k].tolist())
                kept = [t for i, t in enumerate(prompt_ids) if i not in gone]
                ids = torch.tensor([kept + context])
                value = adapter.model(ids).logits[0, -1].log_softmax(-1)[token]
                drops[k].append(float(base - value))
    return {k: float(np.mean(v)) for k, v in drops.items()}


def language_model(tokens: int, n_steps: int) -> dict:
    import numpy as np

    from textlens import load_model
    from textlens.generation import explain_generation

    lm = load_model("demo-lm")
    answer = explain_generation(PROMPT, lm, "gradient", generate=tokens)
    prompt_ids = list(answer.token_ids[: answer.n_prompt])
    out_ids = list(answer.token_ids[answer.n_prompt :])
    print(f"prompt {len(prompt_ids)} tokens, answer {answer.continuation!r} ({len(out_ids)})")
    rows = {}
    for name, settings in LM_METHODS.items():
        if name == "integrated-gradients":
            settings = {**settings, "n_steps": n_steps}
        began = time.perf_counter()
        gen = explain_generation(PROMPT, lm, name, continuation=answer.continuation,
                                 attribute_to="prompt", **settings)  # fmt: skip
        seconds = (time.perf_counter() - began) / len(out_ids)
        drops = removal_drops(lm, prompt_ids, out_ids, gen.matrix(), KS)
        rows[name] = {"seconds_per_output_token": round(seconds, 4), "log_prob_drop": drops,
                      "settings": settings}  # fmt: skip
        print(f"{name}: {seconds:.3f} s per output token, drop "
              + ", ".join(f"top-{k} {v:.3f}" for k, v in drops.items()), flush=True)  # fmt: skip
    rng = np.random.default_rng(0)
    random = [removal_drops(lm, prompt_ids, out_ids, np.zeros((len(out_ids), 1)), KS, rng)
              for _ in range(5)]  # fmt: skip
    rows["random"] = {"log_prob_drop": {k: float(np.mean([r[k] for r in random])) for k in KS}}
    print("random: drop " + ", ".join(f"top-{k} {v:.3f}" for k, v in
                                      rows["random"]["log_prob_drop"].items()))  # fmt: skip
    # the absorbed shares, from explanations of each output token as a next token
    absorbed, by_target = [], []
    for j, token in enumerate(out_ids):
        text = lm.tokenizer.decode(prompt_ids + out_ids[:j])
        exp = _next_token(lm, prompt_ids + out_ids[:j], token, text)
        if exp is None:
            continue
        absorbed.append(abs(float(exp.extras["absorbed"])) / abs(exp.target.score))
        by_target.append(abs(float(exp.extras["absorbed_by_target"])) / abs(exp.target.score))
    rows["relevance"]["absorbed_share_median"] = float(np.median(absorbed))
    rows["relevance"]["absorbed_by_target_share_median"] = float(np.median(by_target))
    _, theirs = runners(lm, answer.continuation, out_ids, n_steps)
    began = time.perf_counter()
    theirs()
    captum = (time.perf_counter() - began) / len(out_ids)
    print(f"captum integrated gradients: {captum:.3f} s per output token", flush=True)
    return {
        "prompt_tokens": len(prompt_ids),
        "output_tokens": len(out_ids),
        "answer": answer.continuation,
        "n_steps": n_steps,
        "methods": rows,
        "captum_ig_seconds_per_output_token": round(captum, 4),
        "captum_over_relevance": round(captum / rows["relevance"]["seconds_per_output_token"], 1),
    }


def _next_token(lm, ids, token, text):
    """The relevance explanation of ``token`` after the token ids ``ids`` (None when the
    decoded text does not encode back to them)."""
    from textlens import explain

    if list(lm.encode([text]).input_ids[0]) != list(ids):
        return None
    return explain(text, lm, "relevance", target=int(token))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--n-steps", type=int, default=32)
    parser.add_argument("--skip-classifier", action="store_true")
    args = parser.parse_args()
    metrics = {}
    if not args.skip_classifier:
        metrics["classifier"] = {"sentences": args.n, "methods": classifier(args.n)}
    metrics["language_model"] = language_model(args.tokens, args.n_steps)
    write_result(
        "relevance",
        metrics,
        peers={"captum": "0.9 LLMGradientAttribution(LayerIntegratedGradients)"},
    )


if __name__ == "__main__":
    main()

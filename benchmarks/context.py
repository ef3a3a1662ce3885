"""Where did the answer come from? Long prompts of invented documents with a known source.

Each prompt holds documents of invented facts (made-up people, places and numbers, so SmolLM2
cannot know them) of about ``--docs`` tokens each; one of them states the answer in exactly one
sentence, the others state the same kind of fact about other places (distractors). The prompt
asks the question and the true answer is forced as the continuation; its first token is
explained (which sentence made the model say this name), and removal is measured on the whole
answer's log-probability.

For every method and length: top-1 and top-3 accuracy of the source sentence and the source
document (units ranked by the sum of their tokens' scores; for attention, the last layer's),
the answer's log-probability drop when the top-k sentences are removed (k = 1, 3, 5), seconds
and peak memory per prompt (growth of resident memory while it runs, after one warm-up pass)
and the plan's memory estimate beside it. ``occlusion-by-sentence`` is leave-one-out of every
sentence (``context-ablation`` with every unit removed alone).

Other parts (each adds to ``benchmarks/results/context.json``; rows of other lengths stay):

- ``--goal``: one prompt of ``--lengths`` tokens with an 8-token answer, explained by
  gradient x input and by context ablation (64 ablations): seconds and peak memory.
- ``--agreement N``: Spearman correlation of gradient x input's token scores with the model in
  bfloat16 against float32, over N prompts.

After each run the growth exponents of time and memory in the prompt length (a least-squares
line through log-log points, per method, over every length in the file) are refitted and the
plot ``benchmarks/results/context.png`` (accuracy and seconds against length) is redrawn.

    python benchmarks/context.py --lengths 1024 2048 --prompts 10
    python benchmarks/context.py --lengths 4096 --prompts 3 --methods gradient-x-input relevance
    python benchmarks/context.py --goal --lengths 8192
    python benchmarks/context.py --agreement 5 --lengths 1024
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import RESULTS, PeakRSS, write_result

SYLLABLES = ["ka", "lo", "mir", "ten", "vos", "ri", "dun", "sel", "ba", "nor", "qui", "zel", "ta"]
ROLES = [
    ("founded the guild of {x}", "Who founded the guild of {x}?"),
    ("keeps the archive of {x}", "Who keeps the archive of {x}?"),
    ("built the bridge at {x}", "Who built the bridge at {x}?"),
]
FILLER = [
    "{p} was born in the valley of {q} and studied the old maps there.",
    "In {q}, the winters are long and the markets close early.",
    "{p} wrote {n} letters to the council of {q}, none of which survive.",
    "The road from {q} to the coast takes {n} days on foot.",
    "Many travellers stop in {q} to buy salt and wool.",
    "{p} once walked across the plain of {q} in a single night.",
]
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "gradient-x-input": ("gradient-x-input", {}),
    "relevance": ("relevance", {}),
    "integrated-gradients": ("integrated-gradients", {"n_steps": 16}),
    "attention": ("attention", {}),
    "occlusion-by-sentence": ("context-ablation", {"units": "sentence", "exact_up_to": 10**6}),
    "context-ablation": ("context-ablation", {"units": "sentence", "n_ablations": 64}),
}
"""Row name: (registry method, settings)."""


def name(rng) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def make_prompt(rng, tokenizer, tokens: int, docs_tokens: int):
    """Documents of invented facts (about ``tokens`` tokens in all) with one source sentence;
    returns (question, documents, answer, source document index, source sentence text)."""
    place = name(rng)
    fact, question = ROLES[rng.integers(len(ROLES))]
    answer = name(rng)
    n_docs = max(2, tokens // docs_tokens)
    source = int(rng.integers(n_docs))
    documents = []
    for d in range(n_docs):
        sentences: list[str] = []
        while len(tokenizer(" ".join(sentences))["input_ids"]) < docs_tokens:
            filler = FILLER[rng.integers(len(FILLER))]
            sentences.append(filler.format(p=name(rng), q=name(rng), n=int(rng.integers(3, 90))))
        if d == source:
            stated = f"{answer} {fact.format(x=place)}."
        else:  # the same kind of fact, about another place
            stated = f"{name(rng)} {fact.format(x=name(rng))}."
        sentences.insert(int(rng.integers(len(sentences) + 1)), stated)
        documents.append(" ".join(sentences))
    sentence = f"{answer} {fact.format(x=place)}."
    return question.format(x=place), documents, " " + answer, source, sentence


def trim_memory() -> None:
    """Give freed heap memory back to the system, so that resident growth measures this run."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--docs", type=int, default=200, help="tokens per document")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--goal", action="store_true", help="the 8-token answer goal only")
    parser.add_argument("--agreement", type=int, default=0, metavar="N",
                        help="bfloat16 against float32 over N prompts only")  # fmt: skip
    args = parser.parse_args()

    import warnings

    from textlens import load_model

    warnings.simplefilter("ignore")
    path = RESULTS / "context.json"
    metrics = json.loads(path.read_text())["metrics"] if path.exists() else {}
    metrics.setdefault("methods", {})
    metrics["document_tokens"] = args.docs
    command = "python " + " ".join(["benchmarks/context.py", *sys.argv[1:]])
    lm = load_model("demo-lm")
    # the process's first pass sets up library buffers once (about 0.5 GiB on this CPU): not
    # part of any method's memory, so it runs before the first measurement
    from textlens import explain

    explain("A short text to warm up.", lm, method="gradient-x-input")
    if args.agreement:
        found = agreement(lm, args)
        metrics.setdefault("bfloat16_agreement", {}).update(found)
        metrics["bfloat16_agreement_command"] = command
    elif args.goal:
        for length in args.lengths:
            found = goal(lm, args, length)
            metrics.setdefault("goal", {})[str(length)] = {**found, "command": command}
    else:
        for length in args.lengths:
            prompts = prompts_for(lm, args, length)
            for row in args.methods:
                found = evaluate_method(lm, prompts, row)
                found["prompts"] = len(prompts)
                found["command"] = command
                metrics["methods"].setdefault(row, {})[str(length)] = found
                shown = ", ".join(f"{k} {v:.3f}" for k, v in found.items() if isinstance(v, float))
                print(f"{length} tokens, {row}: {shown}", flush=True)
    metrics["growth_exponents"] = exponents(metrics["methods"])
    write_result("context", metrics)
    plot(metrics["methods"])


def prompts_for(lm, args, length: int) -> list[tuple]:
    import numpy as np

    rng = np.random.default_rng([args.seed, length])
    return [make_prompt(rng, lm.tokenizer, length, args.docs) for _ in range(args.prompts)]


def first_token(lm, answer: str) -> str:
    """The answer's first token as text (what is explained)."""
    ids = lm.tokenizer(answer, add_special_tokens=False)["input_ids"]
    return lm.tokenizer.decode(ids[:1])


def evaluate_method(lm, prompts, row: str) -> dict:
    """Accuracy, removal drops, seconds, memory and the plan's estimate of one method."""
    import numpy as np

    from textlens.request import Request

    method, settings = METHODS[row]
    hits: dict[str, list[float]] = {
        "sentence_top1": [], "sentence_top3": [], "document_top1": [], "document_top3": []
    }  # fmt: skip
    drops: dict[int, list[float]] = {k: [] for k in (1, 3, 5)}
    seconds, memory, estimates, tokens = [], [], [], []
    for question, documents, answer, source, sentence in prompts:
        asked = Request(
            text=question,
            methods=(method,),
            settings=settings,
            documents=tuple(documents),
            continuation=first_token(lm, answer),
        )
        plans: list[Any] = []
        trim_memory()
        with PeakRSS() as mem:
            began = time.perf_counter()
            gen = asked.run(lm, on_plan=plans.append).generations[0]
            seconds.append(time.perf_counter() - began)
        memory.append((mem.peak - mem.start) / 2**30)
        if plans and plans[0].memory_bytes is not None:
            estimates.append(plans[0].memory_bytes / 2**30)
        first = gen.explanations[0]
        tokens.append(len(first.tokens))
        doc_scores = first.to_units("document").scores
        if doc_scores.ndim == 2:
            doc_scores = doc_scores[-1]
        order = np.argsort(-doc_scores)
        hits["document_top1"].append(float(order[0] == source))
        hits["document_top3"].append(float(source in order[:3]))
        sentences = first.to_units("sentence")
        scores = sentences.scores[-1] if sentences.scores.ndim == 2 else sentences.scores
        inside = [i for i, (a, _) in enumerate(sentences.offsets)
                  if any(s <= a < e for s, e in first.documents)]  # fmt: skip
        ranked = sorted(inside, key=lambda i: -scores[i])
        truth = [i for i in inside if sentences.tokens[i].strip().endswith(sentence)]
        hits["sentence_top1"].append(float(bool(truth) and ranked[0] in truth))
        hits["sentence_top3"].append(float(bool(truth) and any(r in truth for r in ranked[:3])))
        for k in drops:
            drops[k].append(removal_drop(lm, gen.prompt, answer, sentences, ranked[:k]))
    out: dict[str, Any] = {k: float(np.mean(v)) for k, v in hits.items()}
    out.update({f"log_prob_drop_top{k}": float(np.mean(v)) for k, v in drops.items()})
    out["seconds_per_prompt"] = float(np.median(seconds))
    out["peak_memory_gib"] = float(np.max(memory))
    if estimates:
        out["planned_memory_gib"] = float(np.max(estimates))
        out["planned_over_peak"] = float(np.max(estimates) / max(np.max(memory), 1e-9))
    out["prompt_tokens"] = float(np.mean(tokens))
    return out


def removal_drop(lm, prompt: str, answer: str, sentences, removed: list[int]) -> float:
    """The answer's log-probability (all its tokens) with the given sentences deleted from the
    prompt, below the full prompt's."""
    text = prompt
    for i in sorted(removed, key=lambda i: -sentences.offsets[i][0]):
        a, b = sentences.offsets[i]
        text = text[:a] + text[b:]
    return answer_log_prob(lm, prompt, answer) - answer_log_prob(lm, text, answer)


def answer_log_prob(lm, prompt: str, answer: str) -> float:
    import torch

    ids = lm.encode([prompt], warn=False).input_ids[0].tolist()
    out = lm.tokenizer(answer, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids + out])).logits[0].float().log_softmax(-1)
    return float(sum(logits[len(ids) - 1 + j, t] for j, t in enumerate(out)))


def goal(lm, args, length: int) -> dict:
    """An 8-token answer after a prompt of ``length`` tokens: seconds and peak memory of
    gradient x input and of context ablation (64 ablations)."""
    from textlens.request import Request

    question, documents, _, _, sentence = prompts_for(lm, args, length)[0]
    stated = " " + sentence  # " Name founded the guild of Place."
    ids = lm.tokenizer(stated, add_special_tokens=False)["input_ids"][:8]
    continuation = lm.tokenizer.decode(ids)
    out: dict[str, Any] = {"answer_tokens": len(ids)}
    for method, settings in (("gradient-x-input", {}), ("context-ablation", {"n_ablations": 64})):
        asked = Request(text=question, methods=(method,), settings=settings,
                        documents=tuple(documents), continuation=continuation)  # fmt: skip
        plans: list[Any] = []
        trim_memory()
        with PeakRSS() as mem:
            began = time.perf_counter()
            gen = asked.run(lm, on_plan=plans.append).generations[0]
            spent = time.perf_counter() - began
        out[method] = {
            "seconds": round(spent, 1),
            "peak_memory_gib": round((mem.peak - mem.start) / 2**30, 3),
            "planned_memory_gib": round((plans[0].memory_bytes or 0) / 2**30, 3),
            "planned_seconds": None if plans[0].seconds is None else round(plans[0].seconds, 1),
            "prompt_tokens": gen.n_prompt,
        }
        print(f"goal {length} tokens, {method}: {out[method]}", flush=True)
    return out


def agreement(lm, args) -> dict:
    """Spearman of gradient x input's scores, bfloat16 against float32, per length."""
    import numpy as np
    from scipy.stats import spearmanr

    from textlens import load_model
    from textlens.request import Request

    half = load_model("demo-lm", dtype="bfloat16")
    out = {}
    for length in args.lengths:
        found = []
        for question, documents, answer, _, _ in prompts_for(lm, args, length)[: args.agreement]:
            asked = Request(
                text=question,
                methods=("gradient-x-input",),
                documents=tuple(documents),
                continuation=first_token(lm, answer),
            )
            a = asked.run(lm).generations[0].explanations[0]
            b = asked.run(half).generations[0].explanations[0]
            keep = ~np.asarray(a.special)
            found.append(float(spearmanr(a.scores[keep], b.scores[keep])[0]))
            print(f"{length} tokens: bfloat16 vs float32 Spearman {found[-1]:.3f}", flush=True)
        out[str(length)] = {
            "spearman_median": float(np.median(found)),
            "spearman_min": float(np.min(found)),
            "prompts": len(found),
        }
    return out


def exponents(rows: dict) -> dict:
    """Per method, the slope of log(seconds) and log(peak memory) against log(prompt tokens)."""
    import numpy as np

    out = {}
    for row, by_length in rows.items():
        points = sorted((v["prompt_tokens"], v["seconds_per_prompt"], v["peak_memory_gib"])
                        for v in by_length.values())  # fmt: skip
        if len(points) < 2:
            continue
        x = np.log([p[0] for p in points])
        seconds = np.log([p[1] for p in points])
        memory = np.log([max(p[2], 1e-3) for p in points])
        out[row] = {
            "time": round(float(np.polyfit(x, seconds, 1)[0]), 2),
            "memory": round(float(np.polyfit(x, memory, 1)[0]), 2),
            "lengths": [round(p[0]) for p in points],
        }
    return out


def plot(rows: dict) -> None:
    """Source-document top-1 accuracy and seconds per prompt against prompt length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for row, by_length in sorted(rows.items()):
        points = sorted((v["prompt_tokens"], v["document_top1"], v["seconds_per_prompt"])
                        for v in by_length.values())  # fmt: skip
        xs = [p[0] for p in points]
        left.plot(xs, [p[1] for p in points], marker="o", label=row)
        right.plot(xs, [p[2] for p in points], marker="o", label=row)
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("prompt tokens")
    left.set_ylabel("source document top-1 accuracy")
    left.set_ylim(-0.05, 1.05)
    right.set_yscale("log")
    right.set_ylabel("seconds per prompt (SmolLM2-135M, 2-core CPU)")
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "context.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()

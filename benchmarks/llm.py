"""A generated answer's integrated gradients on the embedded SmolLM2: textlens against Captum.

In one run on this machine: a prompt of about 30 tokens, the model's greedy answer of
``--tokens`` tokens, integrated gradients with ``--n-steps`` Gauss-Legendre points and the pad
token as the baseline of the prompt's tokens, every earlier output token kept as it is (Captum's
semantics; textlens ``attribute_to="prompt"``). Captum 0.9: ``LLMGradientAttribution`` around
``LayerIntegratedGradients`` on the word-embedding table, one ``attribute`` call per output
token. textlens: ``explain_generation``, the output tokens batched. Reported: the largest
difference between the two output x prompt matrices, seconds for each (median of ``--repeats``
runs, alternating), the time ratio, and the peak growth of resident memory of one run of each,
each in a fresh process; then seconds per output token for the other methods. First of all,
integrated gradients' memory estimate (``memory_bytes``) against the measured growth of
resident memory for 5 output tokens after prompts of 3 lengths.

    python benchmarks/llm.py [--tokens 20] [--n-steps 32] [--repeats 3]
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

PROMPT = (
    "Paris is the capital and largest city of France. It is known for the Eiffel Tower, "
    "the Louvre and its cafés. The river that runs through Paris is called the"
)
OTHERS = ("gradient", "gradient-x-input", "occlusion")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--n-steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-steps", type=int, default=16)
    parser.add_argument("--memory-probe", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--probe-ids", default="", help=argparse.SUPPRESS)
    parser.add_argument("--peak-probe", choices=("textlens", "captum"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the memory estimates, put into an existing results/llm.json",
    )
    args = parser.parse_args()
    if args.memory_probe is not None:
        ids = [int(i) for i in args.probe_ids.split(",")]
        memory_probe(args.memory_probe, ids, args.memory_steps)
        return
    if args.peak_probe is not None:
        ids = [int(i) for i in args.probe_ids.split(",")]
        peak_probe(args.peak_probe, ids, args.n_steps)
        return

    import numpy as np

    from textlens import load_model
    from textlens.generation import explain_generation

    adapter = load_model("demo-lm")
    answer = explain_generation(PROMPT, adapter, "gradient", generate=args.tokens)
    prompt_ids = list(answer.token_ids[: answer.n_prompt])
    out_ids = list(answer.token_ids[answer.n_prompt :])
    print(f"prompt {len(prompt_ids)} tokens, answer {answer.continuation!r} ({len(out_ids)})")
    memory = memory_estimates(out_ids[:5], args.memory_steps)
    if args.memory_only:
        import json

        path = Path(__file__).resolve().parent / "results" / "llm.json"
        record = json.loads(path.read_text())
        record["metrics"]["memory_predicted_vs_measured"] = memory
        record["metrics"]["memory_steps"] = args.memory_steps
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"updated {path.name}")
        return

    ours, theirs = runners(adapter, answer.continuation, out_ids, args.n_steps)
    times: dict[str, list[float]] = {"textlens": [], "captum": []}
    result: dict[str, object] = {}
    for _ in range(args.repeats):
        for name, run in (("textlens", ours), ("captum", theirs)):
            began = time.perf_counter()
            result[name] = run()
            times[name].append(time.perf_counter() - began)
    peaks = {name: peak_memory(name, out_ids, args.n_steps) for name in times}
    mine = result["textlens"].matrix()[:, : len(prompt_ids)]
    other = result["captum"].token_attr.detach().cpu().numpy()
    if other.shape != mine.shape:
        raise SystemExit(f"shapes differ: textlens {mine.shape}, captum {other.shape}")
    diff = float(np.abs(mine - other).max())
    scale = float(np.abs(other).max())
    medians = {k: float(np.median(v)) for k, v in times.items()}
    ratio = medians["captum"] / medians["textlens"]
    print(
        f"integrated gradients, {len(out_ids)} output tokens x {len(prompt_ids)} prompt tokens, "
        f"n_steps {args.n_steps}: max |textlens - captum| {diff:.2e} (largest |score| {scale:.3g});"
        f" textlens {medians['textlens']:.1f} s, captum {medians['captum']:.1f} s "
        f"(ratio {ratio:.2f}); peak RSS growth textlens {peaks['textlens']:.2f} GiB, captum "
        f"{peaks['captum']:.2f} GiB",
        flush=True,
    )
    per_token = {}
    for method in OTHERS:
        began = time.perf_counter()
        explain_generation(PROMPT, adapter, method, continuation=answer.continuation)
        per_token[method] = (time.perf_counter() - began) / len(out_ids)
        print(f"{method}: {per_token[method]:.3f} s per output token", flush=True)
    per_token["integrated-gradients"] = medians["textlens"] / len(out_ids)
    write_result(
        "llm",
        {
            "model": "SmolLM2-135M-Instruct (float32)",
            "prompt_tokens": len(prompt_ids),
            "output_tokens": len(out_ids),
            "n_steps": args.n_steps,
            "max_abs_difference": diff,
            "largest_abs_score": scale,
            "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
            "seconds_median": medians,
            "captum_over_textlens": round(ratio, 3),
            "peak_rss_growth_gib": peaks,
            "seconds_per_output_token": per_token,
            "memory_predicted_vs_measured": memory,
        },
        peers={"captum": "0.9 LLMGradientAttribution(LayerIntegratedGradients)"},
    )


def runners(adapter, continuation: str, out_ids: list[int], n_steps: int):
    """The two runs compared: textlens's and Captum's, on the same prompt and answer."""
    import torch
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

    from textlens.generation import explain_generation

    def ours():
        return explain_generation(
            PROMPT, adapter, "integrated-gradients", continuation=continuation,
            attribute_to="prompt", n_steps=n_steps, baseline="pad",
        )  # fmt: skip

    lig = LayerIntegratedGradients(adapter.model, adapter.model.get_input_embeddings())
    captum = LLMGradientAttribution(lig, adapter.tokenizer)
    pad = adapter.pad_token_id

    def theirs():
        inp = TextTokenInput(PROMPT, adapter.tokenizer, baselines=pad)  # removed tokens: pad
        target = torch.tensor(out_ids)
        return captum.attribute(inp, target=target, n_steps=n_steps, method="gausslegendre")

    return ours, theirs


def peak_memory(name: str, out_ids: list[int], n_steps: int) -> float:
    """Peak growth of resident memory (GiB) of one run of ``name``, in a fresh process (in a
    process that ran the other first, freed pages would hide part of it)."""
    import json
    import subprocess

    command = [sys.executable, __file__, "--peak-probe", name, "--n-steps", str(n_steps)]
    command += ["--probe-ids", ",".join(map(str, out_ids))]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_gib"])


def peak_probe(name: str, out_ids: list[int], n_steps: int) -> None:
    """One run of ``peak_memory``, in this (fresh) process; prints a JSON line."""
    import json

    from textlens import load_model

    adapter = load_model("demo-lm")
    continuation = adapter.tokenizer.decode(out_ids)
    ours, theirs = runners(adapter, continuation, out_ids, n_steps)
    with PeakRSS() as mem:
        (ours if name == "textlens" else theirs)()
    print(json.dumps({"peak_gib": round((mem.peak - mem.start) / 2**30, 3)}))


def memory_estimates(out_ids, n_steps: int) -> list[dict[str, float]]:
    """Integrated gradients' predicted peak memory (its ``memory_bytes`` for the batch of every
    output token's prefix) against the measured growth of resident memory, for 3 prompt
    lengths, each in a fresh process (a heap that ran something before keeps its pages)."""
    import json
    import subprocess

    rows = []
    for repeat in (1, 4, 8):
        ids = ",".join(map(str, out_ids))
        command = [sys.executable, __file__, "--memory-probe", str(repeat)]
        command += ["--memory-steps", str(n_steps), "--probe-ids", ids]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"prompt {row['prompt_tokens']} tokens: predicted {row['predicted_gib']:.2f} GiB, "
              f"measured {row['measured_gib']:.2f} GiB", flush=True)  # fmt: skip
    return rows


def memory_probe(repeat: int, out_ids: list[int], n_steps: int) -> None:
    """One length of ``memory_estimates``, in this (fresh) process; prints a JSON line. The
    prediction is the one the run plans with (``Plan.memory_bytes``, first batch)."""
    import json

    from textlens import load_model
    from textlens.generation import explain_generation
    from textlens.methods import get_method

    adapter = load_model("demo-lm")
    method = get_method("integrated-gradients", n_steps=n_steps)
    prompt = " ".join([PROMPT] * repeat)
    n = len(adapter.encode([prompt]).input_ids[0])
    continuation = adapter.tokenizer.decode(out_ids)
    plans = []
    with PeakRSS() as mem:
        explain_generation(prompt, adapter, method, continuation=continuation, on_plan=plans.append)
    measured = (mem.peak - mem.start) / 2**30
    predicted = plans[0].memory_bytes / 2**30
    print(json.dumps({"prompt_tokens": n, "predicted_gib": round(predicted, 3),
                      "measured_gib": round(measured, 3),
                      "batch_size": plans[0].batch_size}))  # fmt: skip


if __name__ == "__main__":
    main()

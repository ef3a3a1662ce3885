"""The least time the paper's objective allows for precise sigma on this machine (MiniLM hidden
states), whatever the solver: noise samples needed, times what one sample costs.

Near the optimum, sigma_i^2 = rate / (S a_i), where a_i is an expectation over the noise; an
answer is only as precise as its estimate of a_i, so log sigma_i carries a standard error of
0.5 x s_i / sqrt(n) after n independent samples, s_i being the relative spread of one sample's
estimate of a_i (the pathwise gradient of the data term with respect to log sigma_i, divided by
sigma_i^2, the estimator the method uses). For each layer this script measures, at the default's
sigma on the packaged MiniLM:

- s (RMS over the tokens of s_i, from ``--samples-one`` independent samples for the 20-token
  sentence of ``benchmarks/information.py``, ``--samples`` for each of ``--n`` test sentences),
- the seconds one sample costs (a forward pass to the layer and its backward pass, in batches
  of ``--batch`` samples, the median over the batches),

and from them the fewest samples for an RMS standard error of log sigma of 0.01 (sigma within
about 1%, the lenient reading of the precision goal) and of 0.004 (what ``precision="values"``
asks, so that the largest of 20 errors stays near 1%), and their seconds: a floor that counts
no burn-in, no stopping test and no solver overhead. Goals it is set against: one sentence x 6
layers in 4.65 s (100x the reference to its own convergence, ``benchmarks/information.py``) and
32 sentences x 6 layers in 60 s.

    python benchmarks/information_floor.py [--n 32] [--samples 128] [--samples-one 4096]
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

GOAL_ONE_S = 4.65  # 100x the reference's 465 s to its own convergence (information.json)
GOAL_MANY_S = 60.0
PRECISIONS = {"rms_se_0.01": 0.01, "rms_se_0.004": 0.004}


def spread_and_cost(adapter, text, layer, sigma, counted, samples, batch_size, seed):
    """Relative spread per token of one sample's a_i ``(T,)`` and the median seconds a sample."""
    import numpy as np
    import torch

    from textlens.methods.information.regularization import regularization

    batch = adapter.encode([text])
    x = adapter.embed(batch).detach()
    scale = regularization(adapter, "hidden", 500, "demo")[layer]
    log_sigma = torch.log(torch.tensor(np.asarray(sigma), dtype=x.dtype))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        clean = adapter.hidden_state_at(x, batch, torch.zeros(1, dtype=torch.long), layer)
    grads, seconds = [], []
    for start in range(0, samples, batch_size):
        k = min(batch_size, samples - start)
        eps = torch.randn((k, *x.shape[1:]), generator=gen)
        rows = torch.zeros(k, dtype=torch.long)
        began = time.perf_counter()
        leaf = log_sigma.expand(k, -1).clone().requires_grad_(True)  # one copy per sample
        h = adapter.hidden_state_at(
            x[rows] + torch.exp(leaf).unsqueeze(-1) * eps, batch, rows, layer
        )
        data = (((h - clean) / scale) ** 2).mean(dim=(1, 2))
        (g,) = torch.autograd.grad(data.sum(), leaf)
        seconds.append((time.perf_counter() - began) / k)
        grads.append(g.double())
    a = torch.cat(grads) / torch.exp(2 * log_sigma.double())  # (samples, T)
    mean, std = a.mean(0), a.std(0)
    rel = (std / mean).numpy()
    keep = np.asarray(counted) & (mean.numpy() > 0)
    return rel[keep], float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--samples-one", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import numpy as np
    import torch

    from textlens import data, explain_many
    from textlens.adapters import HFAdapter
    from textlens.zoo import load_encoder

    torch.manual_seed(0)
    model, tokenizer, _ = load_encoder()
    adapter = HFAdapter(model, tokenizer, name="minilm")
    test = list(data.rotten_tomatoes("test").texts)
    one = next(t for t in test if len(tokenizer(t)["input_ids"]) == 20)  # information.py's
    texts = [one, *test[: args.n]]
    exps = explain_many(texts, adapter, "information-loss", corpus="demo", batch_size=args.n + 1)
    layers = list(exps[0].layers)

    per_text = []
    for i, (text, exp) in enumerate(zip(texts, exps, strict=True)):
        sigma = np.asarray(exp.extras["sigma"])
        saturated = np.asarray(exp.extras["saturated"]) > 0
        rows = {}
        for j, layer in enumerate(layers):
            rel, cost = spread_and_cost(
                adapter,
                text,
                layer,
                sigma[j],
                ~saturated[j],
                args.samples_one if i == 0 else args.samples,
                args.batch,
                1000 + i,
            )
            s = float(np.sqrt(np.mean(rel**2)))
            need = {k: (0.5 * s / se) ** 2 for k, se in PRECISIONS.items()}
            rows[str(layer)] = {
                "spread": round(s, 4),
                "seconds_per_sample": round(cost, 5),
                "samples_needed": {k: round(v, 1) for k, v in need.items()},
                "seconds_needed": {k: round(v * cost, 3) for k, v in need.items()},
            }
        floor = {k: sum(r["seconds_needed"][k] for r in rows.values()) for k in PRECISIONS}
        per_text.append({"tokens": len(exp.tokens), "layers": rows, "floor_seconds": floor})
        if i == 0:
            print("one sentence (20 tokens), per layer:")
            print("layer  spread  ms/sample  samples for 1% (0.4%)  seconds for 1% (0.4%)")
            for layer, r in rows.items():
                n1, n4 = r["samples_needed"].values()
                t1, t4 = r["seconds_needed"].values()
                ms = 1000 * r["seconds_per_sample"]
                print(f"{layer:>5}  {r['spread']:.3f}  {ms:9.1f}  {n1:7.0f} ({n4:6.0f})  "
                      f"{t1:8.2f} ({t4:7.2f})")  # fmt: skip
            f1, f4 = floor.values()
            print(f"floor, one sentence x 6 layers: {f1:.1f} s (1%), {f4:.1f} s (0.4%); "
                  f"goal {GOAL_ONE_S} s", flush=True)  # fmt: skip

    many = per_text[1:]
    many_floor = {k: sum(t["floor_seconds"][k] for t in many) for k in PRECISIONS}
    spreads = {
        layer: float(np.median([t["layers"][str(layer)]["spread"] for t in many]))
        for layer in layers
    }
    print(f"{args.n} test sentences x 6 layers: floor {many_floor['rms_se_0.01']:.0f} s (1%), "
          f"{many_floor['rms_se_0.004']:.0f} s (0.4%); goal {GOAL_MANY_S:.0f} s; median spread "
          f"per layer {[round(v, 3) for v in spreads.values()]}")  # fmt: skip
    write_result(
        "information_floor",
        {
            "samples_per_layer": args.samples,
            "samples_per_layer_one_sentence": args.samples_one,
            "batch": args.batch,
            "one_sentence": per_text[0],
            "one_sentence_goal_seconds": GOAL_ONE_S,
            "one_sentence_floor_over_goal": {
                k: round(v / GOAL_ONE_S, 2) for k, v in per_text[0]["floor_seconds"].items()
            },
            "sentences": args.n,
            "sentences_floor_seconds": {k: round(v, 1) for k, v in many_floor.items()},
            "sentences_goal_seconds": GOAL_MANY_S,
            "sentences_floor_over_goal": {
                k: round(v / GOAL_MANY_S, 2) for k, v in many_floor.items()
            },
            "sentences_median_spread_per_layer": {str(k): round(v, 4) for k, v in spreads.items()},
            "per_sentence": many,
        },
    )


if __name__ == "__main__":
    main()

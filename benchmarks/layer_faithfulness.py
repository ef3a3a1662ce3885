"""Are layer explanations faithful? Per-layer comprehensiveness on the demo classifier.

For each layer l of a layered explanation, its layer-l scores rank the tokens; the hidden states
of the top tokens after block l are replaced by the layer's mean state and the model runs on
(``textlens.evaluate.layer_removal``); comprehensiveness is the drop of the predicted class's
probability, averaged over the ERASER bins. Measured in one run on the first ``--n`` test
sentences, with 95% bootstrap intervals over sentences, for:

- the information method (Phi = each layer's hidden states, default settings);
- layer conductance (of the predicted class's logit, 50 steps);
- a random ranking (seeded);
- the model-randomisation check: both methods run on a copy of the classifier whose blocks and
  head are re-initialised (embeddings kept), and their rankings are scored on the trained
  classifier. An explanation that reflects what the trained model computes must fall to random's
  level there.

Writes ``benchmarks/results/layer_faithfulness.json`` and the heatmap
``docs/evaluation/layer-faithfulness.png``.

    python benchmarks/layer_faithfulness.py [--n 50]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import write_result

FIGURE = Path(__file__).resolve().parent.parent / "docs" / "evaluation" / "layer-faithfulness.png"
METHODS = {"information-loss": {"corpus": "demo"}, "layer-conductance": {}}


def randomised(adapter, seed: int = 0):
    """A copy of the classifier with its blocks and head re-initialised (normal(0, 0.02)
    weights, zero biases, unit norms); the embeddings are kept."""
    import torch

    from textlens.adapters import HFAdapter

    model = copy.deepcopy(adapter.model)
    gen = torch.Generator().manual_seed(seed)
    embeddings = {id(p) for p in model.get_input_embeddings().parameters()}
    embeddings |= {id(p) for p in model.base_model.embeddings.parameters()}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if id(p) in embeddings:
                continue
            if "LayerNorm" in name or "norm" in name.lower():
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return HFAdapter(model, adapter.tokenizer, name="randomised demo classifier")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()

    import numpy as np

    from textlens import explain_many
    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.evaluate.comparison import bootstrap_interval
    from textlens.evaluate.layer_removal import layer_comprehensiveness
    from textlens.render.evaluation import plot_layer_removal

    adapter = load_model(None)
    texts = list(rotten_tomatoes("test").texts[: args.n])
    rows: dict[str, object] = {}
    seconds: dict[str, float] = {}
    explanations = {}
    for name, settings in METHODS.items():
        started = time.perf_counter()
        explanations[name] = explain_many(texts, adapter, name, **settings)
        seconds[name] = (time.perf_counter() - started) / len(texts)
        rows[name] = layer_comprehensiveness(explanations[name], adapter)
        print(f"{name}: {seconds[name]:.2f} s per sentence", flush=True)
    first = explanations["layer-conductance"]
    rng = np.random.default_rng(0)
    rows["random"] = layer_comprehensiveness(
        first, adapter, scores=[rng.random(e.scores.shape) for e in first]
    )
    shuffled = randomised(adapter)
    for name, settings in METHODS.items():
        exps = explain_many(texts, shuffled, name, **settings)
        rows[f"{name} (randomised model)"] = layer_comprehensiveness(
            first, adapter, scores=[e.scores for e in exps]
        )
        print(f"{name} on the randomised model: done", flush=True)

    layers = list(rows["random"].layers)
    table = {}
    print(f"\n{args.n} sentences: comprehensiveness of removing the top tokens' states at layer l")
    print(f"{'ranking':40}" + "".join(f"{'layer ' + str(v):>24}" for v in layers))
    for name, result in rows.items():
        summary = result.summary()
        table[name] = summary
        cells = "".join(
            f"{s['mean']:7.3f} [{s['low']:.3f}, {s['high']:.3f}]".rjust(24)
            for s in summary.values()
        )
        print(f"{name:40}{cells}")
    # paired: each method's per-sentence margin over random, per layer
    margins = {}
    for name in rows:
        if name == "random":
            continue
        diff = rows[name].comprehensiveness - rows["random"].comprehensiveness
        margins[name] = {
            str(v): dict(zip(("mean", "low", "high"), bootstrap_interval(diff[:, j]), strict=True))
            for j, v in enumerate(layers)
        }
    plot_layer_removal(
        {k: v.comprehensiveness.mean(0) for k, v in rows.items()},
        layers,
        FIGURE,
        title=f"demo classifier, {args.n} test sentences: comprehensiveness by layer",
    )
    print(f"wrote {FIGURE.relative_to(FIGURE.parents[2])}")
    write_result(
        "layer_faithfulness",
        {
            "sentences": args.n,
            "replacement": "the layer's mean state over the real, non-special tokens",
            "bins": list(rows["random"].bins),
            "comprehensiveness": table,
            "margin_over_random": margins,
            "seconds_per_sentence": {k: round(v, 3) for k, v in seconds.items()},
        },
    )


if __name__ == "__main__":
    main()

"""Layer analysis: a layered method's per-token measure over all layers, per word group.

Pictures of the result: ``textlens.render.evaluation``.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textlens.errors import TextlensError

# Small hand-made word lists for the layer analysis (lower case, whole words).
_SENTIMENT = """
good great best better excellent wonderful brilliant beautiful beautifully gripping funny fun
charming delightful moving powerful smart clever fresh enjoyable entertaining compelling engaging
impressive remarkable perfect superb stunning touching warm witty love loved lovely masterpiece
amazing terrific strong solid rich bad worst worse awful terrible boring dull flat stupid silly
mess messy tedious bland lame weak poor dumb annoying pointless predictable disappointing tired
lifeless forgettable unfunny hate hated ugly painful waste failure fails fail mediocre clumsy
"""
_FUNCTION = """
a an the and or but nor so yet of in on at to for from by with about as into onto over under than
then that this these those it its is are was were be been being has have had do does did not no
i you he she we they me him her us them my your his our their who whom which what when where why
how there here all any some such very too just also if because while though although can could
will would shall should may might must
"""
SENTIMENT_WORDS = frozenset(_SENTIMENT.split())
FUNCTION_WORDS = frozenset(_FUNCTION.split())
GROUPS = ("sentiment", "function", "other words", "punctuation", "special")


@dataclass(frozen=True)
class GroupSummary:
    """Per word group and layer: token counts, the mean H, and the mean H relative to the
    sentence with its interval (``{"mean", "low", "high"}`` lists over layers; None when the
    group has no tokens)."""

    mean_information_nats: dict[str, list[float] | None]
    relative_information_nats: dict[str, dict[str, list[float]] | None]
    tokens: dict[str, int]


@dataclass(frozen=True)
class LayerAnalysis:
    """The layer analysis of ``n`` sentences (``to_dict`` is the JSON report)."""

    model: str
    n: int
    settings: dict[str, Any]
    layers: list[int]
    groups: GroupSummary
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n": self.n,
            "settings": self.settings,
            "layers": self.layers,
            "mean_information_nats": self.groups.mean_information_nats,
            "relative_information_nats": self.groups.relative_information_nats,
            "tokens": self.groups.tokens,
            "seconds": self.seconds,
        }


def token_groups(exp: Any) -> list[str]:
    """The word group of every token: by the whole word it belongs to."""
    groups = ["special" if s else "other words" for s in exp.special]
    for word in exp.word_groups():
        start, end = exp.offsets[word[0]][0], exp.offsets[word[-1]][1]
        text = exp.text[start:end].lower()
        if not any(ch.isalnum() for ch in text):
            kind = "punctuation"
        elif text in SENTIMENT_WORDS:
            kind = "sentiment"
        elif text in FUNCTION_WORDS:
            kind = "function"
        else:
            kind = "other words"
        for i in word:
            groups[i] = kind
    return groups


def layer_method() -> str:
    """The method the layer analysis runs: the first registered one with a ``layer_measure``."""
    from textlens.methods import METHODS

    found = [n for n, c in sorted(METHODS.items()) if getattr(c, "layer_measure", None)]
    if not found:
        raise TextlensError("no method measures information per layer and token")
    return found[0]


def layer_analysis(
    model: Any = None,
    n: int = 200,
    *,
    settings: dict[str, Any] | None = None,
    batch_size: int = 32,
    progress: bool = True,
    method: str | None = None,
) -> tuple[LayerAnalysis, list[Any]]:
    """A layered method's per-token measure over all layers for ``n`` test sentences, per group.

    The method (by default ``layer_method()``, the information method) names its measure in
    ``layer_measure`` (an extra of axes layer x token: the information loss in nats).

    Returns the analysis (mean information loss in nats per group and layer, with token counts)
    and the explanations (to draw a few of them).
    """
    from tqdm.auto import tqdm

    from textlens.adapters.loading import load_model
    from textlens.data import rotten_tomatoes
    from textlens.methods import METHODS
    from textlens.pipeline import explain_many

    if n < 1:
        raise TextlensError("the layer analysis needs at least one sentence")
    method = method or layer_method()
    measure = METHODS[method].layer_measure  # type: ignore[attr-defined]
    adapter = load_model(model)
    settings = dict(settings or {})
    texts = list(rotten_tomatoes("test").texts[:n])
    began = time.perf_counter()
    exps: list[Any] = []
    for start in tqdm(
        range(0, len(texts), batch_size), desc="layer analysis", disable=not progress
    ):
        chunk = texts[start : start + batch_size]
        exps += explain_many(chunk, adapter, method, batch_size=batch_size, **settings)
    seconds = time.perf_counter() - began
    rows = [
        (token_groups(e), np.asarray(e.extras[measure], float)) for e in exps
    ]  # (layer, token) each
    analysis = LayerAnalysis(
        model=adapter.name,
        n=len(texts),
        settings=settings,
        layers=list(exps[0].layers or ()),
        groups=group_summary(rows),
        seconds=seconds,
    )
    return analysis, exps


def group_summary(
    rows: Sequence[tuple[Sequence[str], np.ndarray]], n_resamples: int = 1000, seed: int = 0
) -> GroupSummary:
    """Per word group and layer: the mean information loss and the mean relative to its sentence.

    ``rows`` holds, per sentence, each token's group and the nats ``(layer, token)``. The
    relative measure subtracts the sentence's mean over its tokens at that layer, which removes
    what differs between whole sentences (H shifts with the sentence's length through
    ``rate / S``); its 95% interval resamples sentences (percentile bootstrap, seeded).
    Groups without tokens get None.
    """
    n_layers = rows[0][1].shape[0] if rows else 0
    # per sentence and group: token count, sum of H and sum of H relative to the sentence
    count = np.zeros((len(rows), len(GROUPS)))
    total = np.zeros((len(rows), len(GROUPS), n_layers))
    relative = np.zeros_like(total)
    for r, (groups, nats) in enumerate(rows):
        centred = nats - nats.mean(axis=1, keepdims=True)
        for g, name in enumerate(GROUPS):
            pick = [i for i, k in enumerate(groups) if k == name]
            count[r, g] = len(pick)
            total[r, g] = nats[:, pick].sum(axis=1)
            relative[r, g] = centred[:, pick].sum(axis=1)
    tokens = count.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = total.sum(0) / tokens[:, None]
        rel = relative.sum(0) / tokens[:, None]
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(rows), size=(n_resamples, len(rows)))
        draws = relative[picks].sum(1) / count[picks].sum(1)[..., None]  # (draw, group, layer)
    with warnings.catch_warnings():  # a group absent from every sentence: all-NaN, reported None
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [2.5, 97.5], axis=0) if len(rows) else (rel, rel)

    def listed(values: np.ndarray, g: int) -> list[float] | None:
        return values[g].tolist() if tokens[g] else None

    return GroupSummary(
        mean_information_nats={n: listed(means, g) for g, n in enumerate(GROUPS)},
        relative_information_nats={
            n: None
            if not tokens[g]
            else {"mean": rel[g].tolist(), "low": low[g].tolist(), "high": high[g].tolist()}
            for g, n in enumerate(GROUPS)
        },
        tokens={n: int(tokens[g]) for g, n in enumerate(GROUPS)},
    )


def layer_table(summary: LayerAnalysis) -> str:
    """Two Markdown tables: the mean information loss per group and layer, and the mean relative
    to each token's sentence with its 95% interval."""
    layers, groups = summary.layers, summary.groups
    head = "| group | tokens | " + " | ".join(f"layer {v}" for v in layers) + " |"
    rule = "|" + "---|" * (len(layers) + 2)
    absolute, relative = [head, rule], [head, rule]
    for g in GROUPS:
        row, rel = groups.mean_information_nats[g], groups.relative_information_nats[g]
        if row is None or rel is None:
            continue
        cells = " | ".join(f"{v:.1f}" for v in row)
        absolute.append(f"| {g} | {groups.tokens[g]} | {cells} |")
        cells = " | ".join(
            f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]"
            for m, lo, hi in zip(rel["mean"], rel["low"], rel["high"], strict=True)
        )
        relative.append(f"| {g} | {groups.tokens[g]} | {cells} |")
    return (
        "Mean information loss H (nats per token; lower = more of the word reaches the layer):"
        "\n\n" + "\n".join(absolute) + "\n\nRelative to the sentence (H minus the mean H of "
        "the sentence's tokens at that layer), mean [95% bootstrap interval over sentences]:"
        "\n\n" + "\n".join(relative) + "\n"
    )


def write_layer_analysis(
    summary: LayerAnalysis, exps: Sequence[Any], out_dir: str | Path, n_examples: int = 3
) -> list[Path]:
    """``layers.md``, ``layers.json``, ``layers-groups.png`` and ``layers-examples.png``."""
    from textlens.render.evaluation import plot_groups, plot_layer_examples
    from textlens.render.export import write_atomic

    out_dir = Path(out_dir)
    groups_png = plot_groups(summary, GROUPS, out_dir / "layers-groups.png")
    examples_png = plot_layer_examples(exps, out_dir / "layers-examples.png", n_examples)
    md = write_atomic(out_dir / "layers.md", layer_table(summary))
    js = write_atomic(out_dir / "layers.json", json.dumps(summary.to_dict(), indent=2) + "\n")
    return [md, js, groups_png, examples_png]

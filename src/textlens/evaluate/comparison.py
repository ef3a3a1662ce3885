"""Method comparison on real data: every method scored on the same texts.

Every method explains the same ``n`` texts (the demo classifier's Rotten Tomatoes test split by
default, or any ``.txt`` / ``.jsonl`` / ``.csv`` / ``.parquet`` file for any sequence classifier
or causal LM), following the predicted class (or next token) unless a target is given; each
explanation is scored with ``evaluate`` (tokens, or whole words / sentences removed), and its
comprehensiveness normalised between the input's bounds (NAOPC, ``textlens.evaluate.naopc``).
Each metric is reported as its mean with a 95% bootstrap interval over texts (1,000 resamples,
seeded), with seconds per example for the explaining. Pictures: ``textlens.render.evaluation``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textlens.errors import TextlensError

METRICS = (
    ("comprehensiveness", "higher"),
    ("naopc", "higher"),
    ("sufficiency", "lower"),
    ("deletion_auc", "lower"),
    ("insertion_auc", "higher"),
    ("loo_kendall_tau", "higher"),
    ("completeness", "lower"),
)
RANDOM = "random"


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% bootstrap interval."""

    mean: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class MethodSummary:
    """One method's scores over the sentences: each metric's interval, the mean curves, cost."""

    settings: dict[str, Any]
    seconds_per_example: float
    metrics: dict[str, Interval]
    deletion_curve: list[float]
    insertion_curve: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "seconds_per_example": self.seconds_per_example,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "deletion_curve": self.deletion_curve,
            "insertion_curve": self.insertion_curve,
        }


@dataclass(frozen=True)
class Comparison:
    """Every method compared on the same sentences (``to_dict`` is the JSON report)."""

    model: str
    n: int
    split: str
    removal: str
    seed: int
    methods: dict[str, MethodSummary] = field(default_factory=dict)
    unit: str = "token"
    followed: str = "probability of the followed class"
    accuracy: float | None = None
    """The model's accuracy on the texts, when the data has labels."""
    bounds: dict[str, Any] = field(default_factory=dict)
    """How the NAOPC bounds were found: texts with exact bounds, beam width, seconds."""
    interrupted: bool = False
    """Stopped by Ctrl-C: ``methods`` holds the ones that finished."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n": self.n,
            "data": self.split,
            "split": self.split,
            "unit": self.unit,
            "followed": self.followed,
            "removal": self.removal,
            "seed": self.seed,
            "accuracy": self.accuracy,
            "naopc_bounds": self.bounds,
            "interrupted": self.interrupted,
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
        }

    def to_frame(self) -> Any:
        """One row per method: each metric's mean and 95% interval, and seconds per example
        (a pandas DataFrame)."""
        import pandas as pd

        rows = []
        for name, row in self.methods.items():
            record: dict[str, Any] = {"method": name}
            for metric, interval in row.metrics.items():
                record[metric] = interval.mean
                record[f"{metric}_low"], record[f"{metric}_high"] = interval.low, interval.high
            record["seconds_per_example"] = row.seconds_per_example
            rows.append(record)
        return pd.DataFrame(rows).set_index("method")

    def _repr_html_(self) -> str:
        """The comparison as a table in a notebook."""
        import html

        head = ["method", *(f"{k} ({d} is better)" for k, d in METRICS), "s / example"]
        cells = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
        for name, row in self.methods.items():
            values = [
                f"{row.metrics[k].mean:.3f} [{row.metrics[k].low:.3f}, {row.metrics[k].high:.3f}]"
                if math.isfinite(row.metrics[k].mean)
                else "n/a"
                for k, _ in METRICS
            ]
            tds = [html.escape(name), *values, f"{row.seconds_per_example:.3f}"]
            cells.append("<tr>" + "".join(f"<td>{v}</td>" for v in tds) + "</tr>")
        caption = html.escape(describe_run(self))
        return f"<table><caption>{caption}</caption>{''.join(cells)}</table>"


def bootstrap_interval(
    values: Sequence[float], n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval of the finite values (NaN if none)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, (n_resamples, v.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(v.mean()), float(low), float(high)


def random_scores(
    adapter: Any, texts: Sequence[str], seed: int, unit: str = "token"
) -> list[np.ndarray]:
    """Uniform random scores per token (or word, sentence): the baseline every method should
    beat."""
    rng = np.random.default_rng(seed)
    if unit == "token":
        batch = adapter.encode(list(texts), warn=False)
        return [rng.random(int(n)) for n in batch.lengths.tolist()]
    from textlens.evaluate.faithfulness import removal_plans

    _, plans = removal_plans(adapter, texts, unit)
    return [rng.random(len(p.units)) for p in plans]


def evaluation_settings(method: str) -> dict[str, Any]:
    """The settings a method asks the comparison to use where its defaults do not fit a class
    target (its ``evaluation_settings``)."""
    from textlens.methods import METHODS
    from textlens.methods.base import describe

    return dict(describe(METHODS[method], "evaluation_settings")) if method in METHODS else {}


@dataclass(frozen=True)
class Dataset:
    """Texts to evaluate on, their labels (class indices) if known, and a name for reports."""

    texts: list[str]
    labels: list[int] | None
    name: str
    skipped: int = 0


def _class_of(value: Any, names: Sequence[str], row: int, column: str) -> int:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip() in names:
        return list(names).index(value.strip())
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value < len(names):
        return value
    raise TextlensError(
        f"row {row}: label {value!r} in column {column!r} is not one of the model's classes "
        f"({', '.join(names)}) or an index 0..{len(names) - 1}"
    )


def load_dataset(
    adapter: Any,
    data: str | None,
    n: int,
    column: str = "text",
    label_column: str | None = None,
) -> Dataset:
    """The first ``n`` usable texts of ``data`` (a file or folder, as ``explain-file`` reads them)
    with their labels; None = the Rotten Tomatoes test split (labelled, for the demo classifier).

    Raises:
        TextlensError: No such file, a missing column, no usable text, labels that are not the
            model's classes, or labels for a model that is not a classifier.
    """
    from textlens.data import input_files, read_column, read_inputs, rotten_tomatoes

    if data is None:
        if label_column is not None:
            raise TextlensError("--label-column needs --data (the default data has its labels)")
        split = rotten_tomatoes("test")[:n]
        labels = None
        if adapter.task == "sequence-classification" and adapter.labels == split.label_names:
            labels = [int(v) for v in split.labels]
        return Dataset(list(split.texts), labels, "rotten_tomatoes test[:n]")
    rows = read_inputs(data, column)
    if not rows:
        raise TextlensError(f"{data} holds no texts: give a file with at least two")
    labels_all: list[Any] | None = None
    if label_column is not None:
        if adapter.task != "sequence-classification":
            raise TextlensError(
                f"--label-column needs a sequence classifier; this model is {adapter.task}"
            )
        files = input_files(data)
        labels_all = [v for f in files for v in read_column(f, label_column)]
    good = [r for r in rows if r.error is None]
    if not good:
        raise TextlensError(f"{data} has no usable text in column {column!r}: {rows[0].error}")
    chosen = good[:n]
    labels = None
    if labels_all is not None:
        names = adapter.labels or tuple(str(i) for i in range(adapter.model.config.num_labels))
        missing = [r.row for r in chosen if labels_all[r.row] is None]
        if missing:
            raise TextlensError(f"row {missing[0]} has no {label_column!r} label")
        labels = [_class_of(labels_all[r.row], names, r.row, str(label_column)) for r in chosen]
    name = f"{data} (column {column!r}" + (f", labels {label_column!r})" if label_column else ")")
    return Dataset([r.text for r in chosen], labels, name, skipped=len(rows) - len(good))


def compare_methods(
    model: Any = None,
    n: int = 200,
    methods: Sequence[str] | str = "all",
    *,
    removal: str = "delete",
    seed: int = 0,
    progress: bool = True,
    data: str | None = None,
    column: str = "text",
    label_column: str | None = None,
    target: Any = None,
    unit: str = "token",
    naopc: bool = True,
    batch_size: int = 16,
    target_kind: str | None = None,
) -> Comparison:
    """Explain ``n`` texts with each method and score them.

    Args:
        model: A sequence classifier or causal LM (folder, adapter; None = the demo classifier).
        n: How many texts (the first ``n`` usable ones).
        methods: Method names (plus ``"random"``), or ``"all"``.
        removal: ``"delete"`` or ``"mask"`` (see ``textlens.evaluate.faithfulness``).
        seed: For the random baseline and the bootstrap.
        progress: Progress bars (per method, with rate and ETA) on standard error.
        data: A ``.txt`` / ``.jsonl`` / ``.csv`` / ``.parquet`` file or a folder; None = the
            Rotten Tomatoes test split.
        column, label_column: The text column, and a label column (accuracy is then reported).
        target: The class (name or index) or next token followed for every text; None = the
            model's own prediction for each text.
        target_kind: A registered target kind that reads ``target`` (``textlens.targets``);
            the metrics follow what that kind says they follow (its ``follow``).
        unit: ``"token"``, ``"word"`` or ``"sentence"``: what the removal metrics remove.
        naopc: Also find each text's AOPC bounds and report NAOPC.
        batch_size: Texts per explaining batch.

    A Ctrl-C while a method runs ends the comparison with the methods finished so far
    (``interrupted`` is set).
    """
    from tqdm.auto import tqdm

    from textlens.adapters.loading import load_model
    from textlens.evaluate.faithfulness import evaluate, evaluate_scores
    from textlens.evaluate.naopc import BEAM, EXACT_UP_TO, aopc_bounds
    from textlens.methods import METHODS, get_method
    from textlens.pipeline import explain_many, with_corpus
    from textlens.targets import as_target, default_follow, several

    every = methods in ("all", ["all"])
    names = [*sorted(METHODS), RANDOM] if every else list(methods)
    unknown = [m for m in names if m not in METHODS and m != RANDOM]
    if unknown:
        raise TextlensError(
            f"unknown method {unknown[0]!r}; available: {', '.join(sorted(METHODS))}, random"
        )
    if not names:
        raise TextlensError("give at least one method (or all)")
    if n < 2:
        raise TextlensError("--n must be at least 2 (the intervals need several texts)")
    if unit not in ("token", "word", "sentence"):
        raise TextlensError(f"unknown unit {unit!r}; use token, word or sentence")
    removing: Any = removal  # checked by the metrics: delete or mask
    unit_kind: Any = unit
    adapter = load_model(model)
    if target is None and target_kind is None:
        default_follow(adapter)  # refuses models that have no class or next token
    goal = as_target(adapter, target, target_kind)
    if several(goal, adapter):
        raise TextlensError(
            "the metrics follow one label at a time: give one --target and run once per label"
        )
    follow = goal.follow()  # what the metrics follow for this target: one home, the target's
    if follow is None:
        raise TextlensError(
            f"the faithfulness metrics follow a class or next-token probability; this "
            f"{adapter.task} model's {getattr(goal, 'kind', 'target')} target has none to follow"
        )
    dataset = load_dataset(adapter, data, n, column, label_column)
    texts = dataset.texts
    if len(texts) < 2:
        raise TextlensError(f"{dataset.name} has {len(texts)} usable text(s); give at least two")
    accuracy = None
    targets = None
    if target is not None:  # a bad label or token fails here, before any work
        import torch

        first = adapter.encode(texts[:1], warn=False)
        with torch.no_grad():
            outputs = adapter.forward(
                adapter.embed(first), first, hidden_states=goal.needs_hidden_states
            )
        index = goal.bind(adapter, first, outputs).infos[0].index
        targets = None if index is None else [int(index)] * len(texts)
    if dataset.labels is not None:
        predicted = _predictions(adapter, texts, batch_size)
        accuracy = float(np.mean(np.asarray(predicted) == np.asarray(dataset.labels)))
    bounds_info: dict[str, Any] = {}
    bounds = None
    rows: dict[str, MethodSummary] = {}
    interrupted = False
    try:
        if naopc:
            began = time.perf_counter()
            bounds = []
            step = 8
            bar = tqdm(total=len(texts), desc="AOPC bounds", unit="text", disable=not progress)
            with bar:
                for start in range(0, len(texts), step):
                    part = texts[start : start + step]
                    bounds += aopc_bounds(
                        adapter, part, None if targets is None else targets[start : start + step],
                        unit=unit, removal=removal, follow=follow,
                    )  # fmt: skip
                    bar.update(len(part))
            bounds_info = {
                "exact": sum(b.exact for b in bounds),
                "beam": sum(not b.exact for b in bounds),
                "exact_up_to_units": EXACT_UP_TO,
                "beam_width": BEAM,
                "seconds_per_example": (time.perf_counter() - began) / len(texts),
            }
        for name in names:
            settings = evaluation_settings(name)
            with tqdm(total=len(texts), desc=name, unit="text", disable=not progress) as bar:
                began = time.perf_counter()
                if name == RANDOM:
                    scores = random_scores(adapter, texts, seed, unit)
                    bar.update(len(texts))
                    seconds = (time.perf_counter() - began) / len(texts)
                    results = evaluate_scores(
                        adapter, texts, scores, targets, removal=removing, unit=unit_kind,
                        follow=follow,
                    )  # fmt: skip
                else:
                    chosen = with_corpus(get_method(name, **settings), texts, adapter.name)
                    exps = []
                    for start in range(0, len(texts), batch_size):
                        part = texts[start : start + batch_size]
                        exps += explain_many(part, adapter, chosen, goal, batch_size=batch_size)
                        bar.update(len(part))
                    seconds = (time.perf_counter() - began) / len(texts)
                    results = evaluate(
                        exps, adapter, removal=removing, unit=unit_kind, follow=follow
                    )
            if bounds is not None:
                results = [
                    dataclasses.replace(r, naopc=b.normalise(r.comprehensiveness))
                    for r, b in zip(results, bounds, strict=True)
                ]
            summary = {
                metric: bootstrap_interval([getattr(r, metric) for r in results], seed=seed)
                for metric, _ in METRICS
            }
            rows[name] = MethodSummary(
                settings={k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
                seconds_per_example=seconds,
                metrics={k: Interval(*v) for k, v in summary.items()},
                deletion_curve=np.mean([r.deletion_curve for r in results], axis=0).tolist(),
                insertion_curve=np.mean([r.insertion_curve for r in results], axis=0).tolist(),
            )
    except KeyboardInterrupt:
        interrupted = True
    return Comparison(
        model=adapter.name,
        n=len(texts),
        split=dataset.name,
        removal=removal,
        seed=seed,
        methods=rows,
        unit=unit,
        followed=follow.description,
        accuracy=accuracy,
        bounds=bounds_info,
        interrupted=interrupted,
    )


def _predictions(adapter: Any, texts: Sequence[str], batch_size: int) -> list[int]:
    """The predicted class of each text."""
    import torch

    out: list[int] = []
    for start in range(0, len(texts), batch_size):
        batch = adapter.encode(list(texts[start : start + batch_size]), warn=False)
        with torch.no_grad():
            logits = adapter.forward(adapter.embed(batch), batch).logits
        out += logits.argmax(-1).tolist()
    return out


def markdown_table(report: Comparison) -> str:
    """One row per method: each metric as mean [95% interval], and seconds per example."""

    def cell(m: Interval) -> str:
        if not math.isfinite(m.mean):
            return "n/a"
        return f"{m.mean:.3f} [{m.low:.3f}, {m.high:.3f}]"

    head = ["method", *(f"{k} ({d} is better)" for k, d in METRICS), "s / example"]
    lines = [describe_run(report), "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = sorted(report.methods.items(), key=lambda kv: -kv[1].metrics["comprehensiveness"].mean)
    for name, row in order:
        cells = [cell(row.metrics[k]) for k, _ in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row.seconds_per_example:.3f} |")
    return "\n".join(lines) + "\n"


def describe_run(report: Comparison) -> str:
    """One line naming the model, the data and what the metrics follow and remove."""
    bits = [f"model {report.model}", f"data {report.split}", f"n={report.n}"]
    if report.accuracy is not None:
        bits.append(f"accuracy {report.accuracy:.3f}")
    removed = "masked" if report.removal == "mask" else "deleted"
    bits += [f"following the {report.followed}", f"{report.unit}s {removed}"]
    bounds = report.bounds
    if bounds:
        bits.append(
            f"NAOPC bounds exact for {bounds['exact']} text(s), beam search (width "
            f"{bounds['beam_width']}) for {bounds['beam']}, "
            f"{bounds['seconds_per_example']:.3f} s / example"
        )
    if report.interrupted:
        bits.append("INTERRUPTED: only the methods that finished")
    return "; ".join(bits)


def write_report(report: Comparison, out_dir: str | Path, stem: str = "evaluation") -> list[Path]:
    """``STEM.md``, ``STEM.json`` and ``STEM-curves.png`` in ``out_dir``."""
    from textlens.render.evaluation import plot_curves
    from textlens.render.export import write_atomic

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise TextlensError(f"folder {out_dir} does not exist: create it first")
    table = markdown_table(report)
    md = write_atomic(out_dir / f"{stem}.md", table)
    body = json.dumps(report.to_dict(), indent=2, allow_nan=True) + "\n"
    js = write_atomic(out_dir / f"{stem}.json", body)
    png = plot_curves(report, out_dir / f"{stem}-curves.png")
    return [md, js, png]

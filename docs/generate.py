"""Generate what the documentation must not copy by hand.

- ``docs/reference/``: one page per method (from the method registry: its docstring, settings,
  types, ranges and defaults), the targets (from the target registry) and the command line (from
  the click commands). These pages are build output (not committed).
- Figure blocks: in ``README.md`` and ``docs/**/*.md``, the text between
  ``<!-- figure: NAME -->`` and ``<!-- /figure -->`` is rendered from
  ``benchmarks/results/*.json`` by ``FIGURES[NAME]``. ``--check`` changes nothing and exits 1
  when a block differs from its results file (the test suite runs it).

    python docs/generate.py            # write both
    python docs/generate.py --check    # figure blocks only, compare
    python docs/generate.py --reference    # reference pages only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
REFERENCE = ROOT / "docs" / "reference"
BLOCK = re.compile(r"(<!-- figure: ([\w-]+) -->\n)(.*?)(<!-- /figure -->)", re.S)


def result(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(found: dict[str, float]) -> str:
    return f"{found['mean']:.3f} ({found['low']:.3f}-{found['high']:.3f})"


# ---------------------------------------------------------------------------- figure blocks


def headline(base: str = "docs/") -> str:
    """Three figures for the README (links from the repository's root, ``base="docs/"``) or
    the documentation's home page (``base=""``)."""
    rel = result("relevance")["metrics"]
    info = result("information")["metrics"]
    cls = rel["classifier"]["methods"]
    lm = rel["language_model"]
    lines = [
        f"- **Faithful in one backward pass.** On {rel['classifier']['sentences']} Rotten "
        f"Tomatoes test sentences, `relevance` (AttnLRP) reaches a comprehensiveness of "
        f"{cls['relevance']['comprehensiveness']['mean']:.3f} against "
        f"{cls['integrated-gradients']['comprehensiveness']['mean']:.3f} for integrated "
        f"gradients, {cls['integrated-gradients']['seconds_per_sentence'] / cls['relevance']['seconds_per_sentence']:.1f}x "  # noqa: E501
        f"faster ([relevance benchmark]({base}benchmarks.md#relevance-propagation)).",
        f"- **Language models.** Explaining a {lm['output_tokens']}-token SmolLM2 answer costs "
        f"{lm['methods']['relevance']['seconds_per_output_token']:.2f} s a token with "
        f"`relevance`, {lm['captum_over_relevance']:.1f}x less than Captum's integrated "
        "gradients on the same CPU.",
        f"- **The information method** (Guan et al., 2019) ranks words as its published "
        f"reference does {info['speedup']['ranking']['vs_reference_to_its_convergence']:.0f}x "
        f"faster (Spearman {info['ours']['ranking']['spearman_min']:.3f} or more against the "
        "optimum), and covers every layer of a batch at once "
        f"([information benchmark]({base}benchmarks.md#the-information-method)).",
    ]
    return "\n".join(lines) + "\n"


def relevance_classifier() -> str:
    rel = result("relevance")["metrics"]["classifier"]
    rows = [
        "| method | comprehensiveness (95% CI) | sufficiency | deletion AUC | s / sentence |",
        "|---|---|---|---|---|",
    ]
    for name, found in rel["methods"].items():
        rows.append(
            f"| {name} | {_ci(found['comprehensiveness'])} | {found['sufficiency']['mean']:.3f} "
            f"| {found['deletion_auc']['mean']:.3f} | {found['seconds_per_sentence']:.4f} |"
        )
    note = (
        f"\nThe demo classifier, {rel['sentences']} test sentences "
        "(`python benchmarks/relevance.py`). Higher comprehensiveness and lower sufficiency "
        "and deletion AUC are more faithful.\n"
    )
    return "\n".join(rows) + "\n" + note


def relevance_lm() -> str:
    lm = result("relevance")["metrics"]["language_model"]
    rows = [
        "| method | log-prob drop, top 1 | top 3 | top 5 | s / output token |",
        "|---|---|---|---|---|",
    ]
    for name, found in lm["methods"].items():
        drop = found["log_prob_drop"]
        rows.append(
            f"| {name} | {drop['1']:.3f} | {drop['3']:.3f} | {drop['5']:.3f} "
            f"| {_f(found.get('seconds_per_output_token'), 3)} |"
        )
    note = (
        f"\nSmolLM2-135M-Instruct, a {lm['prompt_tokens']}-token prompt and a "
        f"{lm['output_tokens']}-token answer; Captum's integrated gradients take "
        f"{lm['captum_ig_seconds_per_output_token']:.2f} s a token "
        f"({lm['captum_over_relevance']:.1f}x `relevance`).\n"
    )
    return "\n".join(rows) + "\n" + note


def information_speed() -> str:
    info = result("information")["metrics"]
    rows = [
        "| setting | seconds (median) | Spearman vs optimum (min; median) "
        "| loss above optimum (max %) | x reference to its convergence | x reference, 5000 steps |",
        "|---|---|---|---|---|---|",
    ]
    for name, found in info["ours"].items():
        speed = info["speedup"][name]
        rows.append(
            f"| {name} | {found['seconds_median']:.1f} | {found['spearman_min']:.3f}; "
            f"{found['spearman_median']:.3f} | {found['loss_above_optimum_percent_max']:.3f} "
            f"| {speed['vs_reference_to_its_convergence']:.1f} "
            f"| {speed['vs_reference_5000_steps']:.1f} |"
        )
    note = (
        f"\nOne {info['sentence_tokens']}-token sentence, all 6 layers of the packaged MiniLM; "
        f"{info['batch_sentences']} sentences x 6 layers take "
        f"{info['batch_seconds_all_layers']:.1f} s in one call, peak RSS "
        f"{info['peak_rss_gib']:.2f} GiB (`python benchmarks/information.py`).\n"
    )
    return "\n".join(rows) + "\n" + note


def context_table() -> str:
    path = RESULTS / "context.json"
    if not path.exists():
        return "No long-context results yet: run `python benchmarks/context.py`.\n"
    found = json.loads(path.read_text())["metrics"]
    rows = [
        "| method | tokens | prompts | source sentence top-1 / top-3 | source document top-1 "
        "| log-prob drop, top 3 | s / prompt | peak GiB | planned / peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, by_length in found["methods"].items():
        for length in sorted(by_length, key=int):
            r = by_length[length]
            rows.append(
                f"| {name} | {r['prompt_tokens']:.0f} | {r['prompts']} "
                f"| {r['sentence_top1']:.2f} / {r['sentence_top3']:.2f} "
                f"| {r['document_top1']:.2f} | {r['log_prob_drop_top3']:.2f} "
                f"| {r['seconds_per_prompt']:.1f} | {r['peak_memory_gib']:.2f} "
                f"| {_f(r.get('planned_over_peak'), 2)} |"
            )
    lines = ["\n".join(rows), ""]
    for length, goal in sorted(found.get("goal", {}).items(), key=lambda kv: int(kv[0])):
        parts = ", ".join(
            f"{name} {g['seconds']:.0f} s and {g['peak_memory_gib']:.2f} GiB"
            for name, g in goal.items()
            if isinstance(g, dict)
        )
        lines.append(f"An 8-token answer after a {length}-token prompt: {parts}.\n")
    for length, agree in sorted(found.get("bfloat16_agreement", {}).items()):
        if not isinstance(agree, dict):
            continue
        lines.append(
            f"Gradient x input with the model in bfloat16 against float32, {length}-token "
            f"documents, {agree['prompts']} prompts: Spearman median "
            f"{agree['spearman_median']:.3f}, smallest {agree['spearman_min']:.3f}.\n"
        )
    return "\n".join(lines)


def attribution_speed() -> str:
    found = result("attribution")["metrics"]["per_method"]
    rows = [
        "| method | 20 tokens | 128 tokens | 511 tokens | peak RSS at 511 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, by_length in sorted(found.items()):
        cells = [f"{by_length[k]['seconds']:.2f}" for k in ("20", "128", "512")]
        rows.append(
            f"| {name} | {' | '.join(cells)} | {by_length['512']['peak_rss_gib']:.2f} GiB |"
        )
    return "\n".join(rows) + "\n"


def precision() -> str:
    """bfloat16 and float16 against float32, each method on the demo classifier and SmolLM2."""
    found = result("precision")["metrics"]
    halves = [d for d in found["dtypes"] if d != "float32"]
    head = " | ".join(f"{d}: Spearman median (min) | largest difference | same top" for d in halves)
    rows = []
    for model, shown in (("classifier", "demo classifier"), ("lm", "SmolLM2")):
        for name, by_dtype in found.get(model, {}).items():
            cells = []
            for d in halves:
                c = by_dtype[d]
                cells.append(
                    f"{c['spearman_median']:.3f} ({c['spearman_min']:.3f}) | "
                    f"{c['largest_difference']:.3f} | {c['same_top']:.2f}"
                )
            times = " / ".join(f"{by_dtype[d]['seconds_median']:.2f}" for d in found["dtypes"])
            rows.append(f"| {shown} | {name} | {' | '.join(cells)} | {times} |")
    columns = 3 + 3 * len(halves)
    deltas = []
    for model, shown in (("classifier", "demo classifier"), ("lm", "SmolLM2")):
        for name, by_dtype in found.get(model, {}).items():
            if all("convergence_delta_median" in by_dtype[d] for d in found["dtypes"]):
                values = ", ".join(
                    f"{d} {by_dtype[d]['convergence_delta_median']:.2f}" for d in found["dtypes"]
                )
                where = "the demo classifier" if model == "classifier" else shown
                deltas.append(f"{name} on {where}: {values}")
    converged = (
        "\n\nThe median size of integrated gradients' own convergence delta (the path sum "
        "against the change of the target, in the target's units): " + "; ".join(deltas) + "."
        if deltas
        else ""
    )
    return "\n".join(
        [
            f"| model | method | {head} | s a text ({' / '.join(found['dtypes'])}) |",
            "|" + " --- |" * columns,
            *rows,
        ]
    ) + (
        f"\n\n{found['texts']} Rotten Tomatoes test sentences and {found['prompts']} SmolLM2 "
        "prompts (next token); largest difference: the largest change of a score, as a share of "
        "the text's largest float32 score; same top: the share of texts whose most important "
        "token is the same." + converged + "\n"
    )


def startup() -> str:
    found = result("startup")["metrics"]
    names = {
        "help": "`textlens --help`",
        "explain_help": "`textlens explain --help`",
        "methods": "`textlens methods`",
        "argument_error": '`textlens explain "a film" --n-steps -5` (an argument error)',
        "explain_gradient": '`textlens explain "A gripping, beautifully acted film." '
        "--method gradient`",
    }
    rows = ["| command | before | after |", "| --- | --- | --- |"]
    for key, shown in names.items():
        rows.append(
            f"| {shown} | {found['before'][key]['median_s']:.2f} s "
            f"| {found['after'][key]['median_s']:.2f} s |"
        )
    rows.append(
        "| a process that only imports transformers and runs `from_pretrained` on the same "
        f"model | {found['from_pretrained_only']['median_s']:.2f} s | |"
    )
    return "\n".join(rows) + "\n"


def evaluation_methods(name: str = "evaluation") -> str:
    """A method comparison written by ``textlens evaluate`` (``docs/evaluation/NAME.json``)."""
    found = json.loads((ROOT / "docs" / "evaluation" / f"{name}.json").read_text())
    first = next(iter(found["methods"].values()))["metrics"]
    metrics = [
        ("comprehensiveness", "higher"),
        *([("naopc", "higher")] if "naopc" in first else []),
        ("sufficiency", "lower"),
        ("deletion_auc", "lower"),
        ("insertion_auc", "higher"),
        ("loo_kendall_tau", "higher"),
        ("completeness", "lower"),
    ]
    rows = [
        "| method | "
        + " | ".join(f"{m} ({better} is better)" for m, better in metrics)
        + " | s / example |",
        "|---" * (len(metrics) + 2) + "|",
    ]
    ranked = sorted(
        found["methods"].items(), key=lambda kv: -kv[1]["metrics"]["comprehensiveness"]["mean"]
    )
    for name, method in ranked:
        cells = []
        for metric, _ in metrics:
            m = method["metrics"][metric]
            finite = m["mean"] == m["mean"]  # NaN where the metric does not apply
            cells.append(f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]" if finite else "n/a")
        rows.append(f"| {name} | {' | '.join(cells)} | {method['seconds_per_example']:.3f} |")
    return "\n".join(rows) + "\n"


def relevance_absorbed() -> str:
    rel = result("relevance")["metrics"]
    cls = rel["classifier"]["methods"]["relevance"]
    lm = rel["language_model"]["methods"]["relevance"]
    return (
        "Median share of the explained value that the rules absorb (biases, the softmax) rather "
        f"than pass to the input tokens: {cls['absorbed_share_median']:.2f} on the demo "
        f"classifier, {lm['absorbed_share_median']:.2f} on SmolLM2's answers (where the target's "
        f"own log-softmax absorbs a further {lm['absorbed_by_target_share_median']:.2f}; shares "
        "above 1 mean the tokens' relevance and the absorbed part have opposite signs).\n"
    )


def server_load() -> str:
    rows = [
        "| worker threads | method | machine | requests/s | p50 latency | p95 latency | status |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, machine in (("server", "quiet"), ("server-busy", None)):
        found = result(name)["metrics"]
        where = machine or f"{found['busy_processes']} other busy processes"
        for threads, by_method in found["by_threads"].items():
            for method, r in by_method.items():
                if not isinstance(r, dict):
                    continue
                codes = ", ".join(f"{n} x {c}" for c, n in r["status_codes"].items())
                rows.append(
                    f"| {threads}{' (default)' if threads == '1' else ''} | {method} | {where} "
                    f"| {r['requests_per_s']:.2f} | {r['median_latency_s']:.2f} s "
                    f"| {r['p95_latency_s']:.2f} s | {codes} |"
                )
    return "\n".join(rows) + "\n"


def corpus_engines() -> str:
    found = result("corpus")["metrics"]
    rows = [
        "| method, rows | local engine | Ray, 1 worker (2 CPUs) | Ray, 2 workers (1 CPU each) "
        "| Ray 2 workers / local |",
        "|---|---|---|---|---|",
    ]
    for method, n in found["rows"].items():
        cells = []
        for engine in ("local", "ray-1", "ray-2"):
            key = f"{method} {engine}"
            rate = found["rows_per_second"][key]["with_startup"]
            cells.append(f"{found['seconds'][key]:.1f} s, {rate:.2f} rows/s")
        ratio = found["seconds"][f"{method} local"] / found["seconds"][f"{method} ray-2"]
        rows.append(f"| {method}, {n:,} | {' | '.join(cells)} | {ratio:.3f} |")
    return "\n".join(rows) + "\n"


def llm_captum() -> str:
    found = result("llm")["metrics"]
    times = found["seconds"]
    ours, theirs = sorted(times["textlens"]), sorted(times["captum"])
    rows = [
        "| | textlens `explain_generation` | Captum 0.9 "
        "`LLMGradientAttribution(LayerIntegratedGradients)` |",
        "|---|---|---|",
        f"| output x prompt matrix | max difference {found['max_abs_difference']:.1e} (largest "
        f"score {found['largest_abs_score']:.1f}) | |",
        f"| seconds (median of {len(ours)}) | {found['seconds_median']['textlens']:.1f} "
        f"({ours[0]:.1f} - {ours[-1]:.1f}) | {found['seconds_median']['captum']:.1f} "
        f"({theirs[0]:.1f} - {theirs[-1]:.1f}); {found['captum_over_textlens']:.2f}x textlens's |",
        f"| peak resident memory growth (one run, fresh process) "
        f"| {found['peak_rss_growth_gib']['textlens']:.2f} GiB "
        f"| {found['peak_rss_growth_gib']['captum']:.2f} GiB |",
    ]
    return "\n".join(rows) + "\n"


def similarity_deletion() -> str:
    found = result("similarity")["metrics"]["methods"]
    rows = [
        "| method | 0% | 20% | 40% | 60% | 80% | 100% | area [95%] | edited / unrelated pairs "
        "| s per pair |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ranked = sorted(found.items(), key=lambda kv: kv[1]["deletion_auc"]["mean"])
    for name, m in ranked:
        curve = [f"{m['curve'][k]['mean']:.3f}" for k in (0, 2, 4, 6, 8, 10)]
        auc, kind = m["deletion_auc"], m["deletion_auc_by_kind"]
        rows.append(
            f"| {name} | {' | '.join(curve)} | {auc['mean']:.3f} [{auc['low']:.3f}, "
            f"{auc['high']:.3f}] | {kind['edited']:.3f} / {kind['unrelated']:.3f} "
            f"| {m.get('seconds_per_pair', 0.0):.2f} |"
        )
    return "\n".join(rows) + "\n"


FIGURES: dict[str, Callable[[], str]] = {
    "headline": headline,
    "headline-docs": lambda: headline(base=""),
    "relevance-classifier": relevance_classifier,
    "relevance-lm": relevance_lm,
    "information-speed": information_speed,
    "context": context_table,
    "server-load": server_load,
    "corpus-engines": corpus_engines,
    "llm-captum": llm_captum,
    "relevance-absorbed": relevance_absorbed,
    "attribution-speed": attribution_speed,
    "startup": startup,
    "precision": precision,
    "evaluation-methods": evaluation_methods,
    "evaluation-own-data": lambda: evaluation_methods("own-data"),
    "similarity-deletion": similarity_deletion,
}


def figure_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def render_figures(text: str) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in FIGURES:
            raise SystemExit(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
        return match.group(1) + FIGURES[name]() + match.group(4)

    return BLOCK.sub(fill, text)


def stale_figures() -> list[str]:
    """Files whose figure blocks differ from their results files."""
    return [
        str(p.relative_to(ROOT))
        for p in figure_files()
        if p.exists() and render_figures(p.read_text()) != p.read_text()
    ]


# ------------------------------------------------------------------------- reference pages


def _control_words(control: dict[str, Any]) -> str:
    kind = control["kind"]
    if kind == "choice":
        text = "one of " + ", ".join(f"`{c}`" for c in control["choices"])
    elif kind == "number":
        text = "whole number" if control["step"] == 1 else "number"
    elif kind == "checkbox":
        text = "true or false"
    else:
        text = "text"
    return text + (" or none" if control.get("optional") else "")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _body(doc: str) -> str:
    """A docstring without its first line and its Args section, for Markdown."""
    lines = doc.strip().splitlines()[1:]
    out, skipping = [], False
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Attributes:"):
            skipping = True
            continue
        if skipping and stripped and not line.startswith("        ") and stripped.endswith(":"):
            skipping = False
        if skipping and (not stripped or line.startswith("        ")):
            continue
        skipping = False
        out.append(line[4:] if line.startswith("    ") else line)
    text = "\n".join(out).strip()
    head, found, refs = text.partition("References:")
    if found:  # one reference a line, as a list
        items = [line.strip() for line in refs.strip().splitlines() if line.strip()]
        text = head.rstrip() + "\n\n**References**\n\n" + "\n".join(f"- {r}" for r in items)
    return text.replace("``", "`")


def _cost(name: str, cls: Any) -> str:
    """What scales a method's work, and its measured seconds where a results file has them."""
    from textlens.methods.base import describe

    setting = describe(cls, "cost_setting")
    parts = [
        "One forward and backward pass per row of work"
        if describe(cls, "backward")
        else "Forward passes only"
    ]
    if setting:
        parts.append(f"the work grows with `{setting}`")
    text = "; ".join(parts) + "."
    speed = result("attribution")["metrics"]["per_method"].get(name)
    if speed:
        text += (
            " Measured on the demo classifier at its defaults (`benchmarks/attribution.py`): "
            + ", ".join(f"{v['seconds']:.2f} s at {v['tokens']} tokens" for v in speed.values())
            + " a sentence."
        )
    return text


def _faithfulness(name: str) -> str:
    """The method's place in the method comparison on the demo classifier, if it took part."""
    found = json.loads((ROOT / "docs" / "evaluation" / "evaluation.json").read_text())["methods"]
    if name not in found:
        return (
            "Not in the method comparison on the demo classifier; see the "
            "[evaluation report](../../reports/evaluation.md) and the "
            "[benchmarks](../../benchmarks.md)."
        )
    ranked = sorted(found, key=lambda k: -found[k]["metrics"]["comprehensiveness"]["mean"])
    c = found[name]["metrics"]["comprehensiveness"]
    return (
        f"Comprehensiveness {c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}] on 200 demo test "
        f"sentences, rank {ranked.index(name) + 1} of {len(ranked)} methods (random included) in "
        "the [evaluation report](../../reports/evaluation.md); higher removes more of the "
        "prediction when the top-ranked tokens go."
    )


def method_pages() -> None:
    from textlens.methods.base import describe
    from textlens.methods.registry import METHODS, describe_methods

    folder = REFERENCE / "methods"
    folder.mkdir(parents=True, exist_ok=True)
    index = [
        "# Methods",
        "",
        "Every method textlens has, generated from the method registry "
        "(`textlens methods` and `GET /api/methods` list the same).",
        "",
        "| method | what it gives | signed | layers |",
        "|---|---|---|---|",
    ]
    for m in describe_methods():
        cls = METHODS[m["name"]]
        flags = [
            "signed scores" if m["signed"] else "scores of one sign",
            "a layer x token matrix" if m["layered"] else "one score per token",
        ]
        if describe(cls, "backward"):
            flags.append("forward and backward passes (gradients)")
        else:
            flags.append("forward passes only")
        rows = [
            f"# {m['name']}",
            "",
            m["summary"].replace("``", "`"),
            "",
            _body(cls.__doc__ or ""),
            "",
            "**What it computes**: " + "; ".join(flags) + ".",
            "",
        ]
        provides = m.get("provides") or {}
        if provides:
            rows += ["**Extras** (in `Explanation.extras`):", ""]
            rows += [f"- `{k}`: {v}" for k, v in provides.items()]
            rows.append("")
        rows += ["## Cost", "", _cost(m["name"], cls), ""]
        rows += ["## How faithful", "", _faithfulness(m["name"]), ""]
        rows += ["## Settings", ""]
        if m["params"]:
            rows += ["| setting | value | default | range | meaning |", "|---|---|---|---|---|"]
            for p in m["params"]:
                rows.append(
                    f"| `{p['name']}` | {_cell(_control_words(p['control']))} "
                    f"| `{_cell(p['default'])}` | {_cell(p['range'] or '')} "
                    f"| {_cell(p['help'].replace('``', '`'))} |"
                )
        else:
            rows.append("None.")
        if m["params"]:
            first = m["params"][0]["name"]
            rows += [
                "",
                f'Give a setting as a keyword (`explain(..., method="{m["name"]}", '
                f"{first}=...)`), as `--{first.replace('_', '-')} VALUE` on the command line, or "
                "in `params` of the web API's request.",
            ]
        rows.append("")
        (folder / f"{m['name']}.md").write_text("\n".join(rows))
        index.append(
            f"| [{m['name']}]({m['name']}.md) | {_cell(m['summary'].replace('``', '`'))} "
            f"| {'yes' if m['signed'] else 'no'} | {'yes' if m['layered'] else 'no'} |"
        )
    (folder / "index.md").write_text("\n".join(index) + "\n")


def target_page() -> None:
    from textlens.targets import TARGETS

    rows = [
        "# Targets",
        "",
        "What a method explains: a class, an answer span, a token's label, the next token, a "
        "hidden state... Generated from the target registry (`textlens targets`). Choose one "
        "with `target_kind=` (`--target-kind`); the default follows the model's task.",
        "",
    ]
    for kind in sorted(TARGETS):
        cls = TARGETS[kind]
        doc = cls.__doc__ or ""
        rows += [
            f"## {kind}",
            "",
            f"For models of task: {', '.join(f'`{t}`' for t in cls.tasks)}.",
            "",
            doc.strip().splitlines()[0].replace("``", "`") if doc.strip() else "",
            "",
            _body(doc),
            "",
        ]
        fields = [f for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
        if fields:
            rows.append("Fields: " + ", ".join(f"`{f.name}`" for f in fields) + ".")
            rows.append("")
    (REFERENCE / "targets.md").write_text("\n".join(rows))


def cli_page() -> None:
    import click

    from textlens.cli import main

    rows = [
        "# Command reference",
        "",
        "Every command and option of `textlens`, generated from the commands themselves "
        "(the same text as `textlens COMMAND --help`).",
        "",
    ]
    context = click.Context(main, info_name="textlens")
    for name in main.list_commands(context):
        command = main.get_command(context, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=context)
        rows += [f"## textlens {name}", "", "```", " ".join(command.collect_usage_pieces(sub))]
        rows[-1] = f"textlens {name} {rows[-1]}"
        rows += ["```", "", (command.help or "").strip().replace("\b\n", ""), ""]
        options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
        if options:
            rows += ["| option | meaning | default |", "|---|---|---|"]
            for p in options:
                names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
                default = p.default if p.show_default and p.default not in (None, ()) else ""
                rows.append(
                    f"| {names} | {_cell(p.help or '')} "
                    f"| {('`' + _cell(default) + '`') if default != '' else ''} |"
                )
            rows.append("")
    (REFERENCE / "cli.md").write_text("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare figure blocks only")
    parser.add_argument("--reference", action="store_true", help="write the reference pages only")
    args = parser.parse_args()
    if args.check:
        stale = stale_figures()
        if stale:
            print("figures differ from benchmarks/results: " + ", ".join(stale))
            print("run: python docs/generate.py")
            sys.exit(1)
        print("figures match benchmarks/results")
        return
    for path in [] if args.reference else figure_files():
        text = path.read_text()
        new = render_figures(text)
        if new != text:
            path.write_text(new)
            print(f"updated figures in {path.relative_to(ROOT)}")
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for plot in sorted(RESULTS.glob("*.png")):  # the benchmarks' plots, for the site's pages
        shutil.copyfile(plot, REFERENCE / plot.name)
    method_pages()
    target_page()
    cli_page()
    print(f"wrote {REFERENCE.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()

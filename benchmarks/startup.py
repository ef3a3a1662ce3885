"""Start-up: the `textlens` command timed as whole processes, before and after a change.

Times, as separate processes (several runs each, medians reported): `textlens --help`,
`textlens explain --help`, `textlens methods`, an argument error (`--n-steps -5`), a one-sentence
`textlens explain --method gradient` on the demo classifier, and, as the floor for the last one,
a process that only imports transformers and calls `from_pretrained` on the same model folder.
Each command runs against the source tree given by `--src` (default: this checkout), so the same
script measures an older commit side by side:

    git worktree add /tmp/textlens-before <commit>
    python benchmarks/startup.py --runs 7 --before /tmp/textlens-before/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import write_result

HERE = Path(__file__).resolve().parent.parent / "src"
SENTENCE = "A gripping, beautifully acted film."
COMMANDS = {
    "help": ["--help"],
    "explain_help": ["explain", "--help"],
    "methods": ["methods"],
    "argument_error": ["explain", "a film", "--n-steps", "-5"],
    "explain_gradient": ["explain", SENTENCE, "--method", "gradient"],
}
LOAD_ONLY = """
import sys, transformers
from textlens import zoo
path = zoo.classifier_path(zoo.DEFAULT_RECIPE)
transformers.AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
"""


def cli(src: Path) -> list[str]:
    """A command line that runs the textlens CLI from the source tree ``src``."""
    code = f"import sys; sys.path.insert(0, {str(src)!r}); from textlens.cli import main; main()"
    return [sys.executable, "-c", code]


def run_once(argv: list[str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - began
    if proc.returncode != 0 and "-5" not in argv:  # the argument error fails on purpose
        raise SystemExit(f"{' '.join(argv[-3:])} failed: {proc.stderr[-500:]}")
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "runs": len(seconds),
    }


def imports_torch(src: Path) -> bool:
    """Whether ``textlens --help`` imports torch from that source tree."""
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); sys.argv = ['textlens', '--help']\n"
        "from textlens.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return proc.stderr.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command")
    parser.add_argument("--before", type=Path, help="another source tree, measured alongside")
    args = parser.parse_args()

    load_argv = [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(HERE)!r})\n" + LOAD_ONLY,
    ]
    trees = {"after": HERE} if args.before is None else {"before": args.before, "after": HERE}
    times: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
    loads = []
    for _ in range(args.runs):  # interleaved, so that a busy moment hits every command alike
        loads.append(run_once(load_argv))
        for label, src in trees.items():
            for name, extra in COMMANDS.items():
                times[label].setdefault(name, []).append(run_once(cli(src) + extra))
    load_only = summary(loads)
    results: dict[str, dict[str, object]] = {}
    for label, src in trees.items():
        results[label] = {"imports_torch_for_help": imports_torch(src)}
        results[label].update({name: summary(v) for name, v in times[label].items()})
    print(f"{'command':<18}" + "".join(f"{label:>12}" for label in results))
    for name in COMMANDS:
        row = "".join(f"{results[label][name]['median_s']:>11.2f}s" for label in results)
        print(f"{name:<18}{row}")
    print(f"{'from_pretrained':<18}{load_only['median_s']:>11.2f}s  (model and tokenizer only)")
    for label in results:
        print(
            f"{label}: `textlens --help` imports torch: {results[label]['imports_torch_for_help']}"
        )
    write_result(
        "startup",
        {**results, "from_pretrained_only": load_only},
    )


if __name__ == "__main__":
    main()

"""Evidence: faithfulness metrics for any explanation, and method comparisons on real data."""

from textlens.evaluate.faithfulness import (
    ERASER_BINS,
    Faithfulness,
    evaluate,
    evaluate_scores,
    kendall_tau,
)

__all__ = ["ERASER_BINS", "Faithfulness", "evaluate", "evaluate_scores", "kendall_tau"]

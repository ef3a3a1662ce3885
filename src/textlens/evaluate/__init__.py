"""Evidence: faithfulness metrics for any explanation, and method comparisons on real data.

- ``faithfulness``: the metrics for one explanation (comprehensiveness, sufficiency, AOPC,
  deletion and insertion curves, agreement with leave-one-out, completeness).
- ``comparison``: every method scored on the same sentences, with intervals.
- ``layers``: a layered method's measure per word group and layer.
- ``entropy``: how spread out attributions are.

Names are imported on first use, so that ``entropy`` can be read without torch.
"""

from __future__ import annotations

from textlens.lazy import exports

_EXPORTS = {
    "ERASER_BINS": "textlens.evaluate.faithfulness",
    "Evaluation": "textlens.evaluate.faithfulness",
    "Faithfulness": "textlens.evaluate.faithfulness",
    "evaluate": "textlens.evaluate.faithfulness",
    "evaluate_scores": "textlens.evaluate.faithfulness",
    "kendall_tau": "textlens.evaluate.faithfulness",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = exports(__name__, _EXPORTS)

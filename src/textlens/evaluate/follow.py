"""What the removal metrics follow as tokens are removed: a number per input the model sees.

- ``ClassProbability``: a sequence classifier's probability of one class (the predicted class of
  the full text unless given).
- ``NextTokenProbability``: a causal LM's probability of one next token (the most likely one
  after the full text unless given).
- ``SimilarityValue``: a sentence encoder's similarity of the pooled text to a fixed vector
  (``textlens.targets.Similarity``).

Each has ``outcome(adapter, batch, outputs, owners)``: the outcome it follows, fixed on the full
texts (``owners[n]``: the text row ``n`` is),
and ``value(adapter, batch, outputs, outcome)``: its value for every row of any batch (rows of
variants: texts with tokens removed), where ``outcome[n]`` belongs to the text row ``n`` came
from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textlens.errors import TextlensError
from textlens.lazy import torch


def _last_logits(batch: Any, outputs: Any) -> torch.Tensor:
    last = batch.attention_mask.sum(1) - 1
    return outputs.logits[torch.arange(len(last), device=last.device), last]


@dataclass(frozen=True)
class ClassProbability:
    """The probability of a class of a sequence classifier."""

    description: str = "probability of the followed class"
    needs_hidden_states: bool = False

    def outcome(self, adapter: Any, batch: Any, outputs: Any, owners: torch.Tensor) -> torch.Tensor:
        return outputs.logits.argmax(-1)

    def value(self, adapter: Any, batch: Any, outputs: Any, outcome: torch.Tensor) -> torch.Tensor:
        probs = outputs.logits.float().softmax(-1)
        return probs.gather(1, outcome.unsqueeze(1)).squeeze(1)


@dataclass(frozen=True)
class NextTokenProbability:
    """The probability of a next token of a causal language model (after the last real token)."""

    description: str = "probability of the followed next token"
    needs_hidden_states: bool = False

    def outcome(self, adapter: Any, batch: Any, outputs: Any, owners: torch.Tensor) -> torch.Tensor:
        return _last_logits(batch, outputs).argmax(-1)

    def value(self, adapter: Any, batch: Any, outputs: Any, outcome: torch.Tensor) -> torch.Tensor:
        probs = _last_logits(batch, outputs).float().softmax(-1)
        return probs.gather(1, outcome.unsqueeze(1)).squeeze(1)


@dataclass(frozen=True)
class SimilarityValue:
    """The similarity of each text's pooled encoding to its own fixed vector (one per text)."""

    vectors: Any = field(repr=False)
    pooling: str = "mean"
    measure: str = "cosine"
    description: str = "similarity to the other text"
    needs_hidden_states: bool = True

    def outcome(self, adapter: Any, batch: Any, outputs: Any, owners: torch.Tensor) -> torch.Tensor:
        return owners

    def value(self, adapter: Any, batch: Any, outputs: Any, outcome: torch.Tensor) -> torch.Tensor:
        from textlens.targets import pool, similarity

        pooled = pool(outputs.hidden_states[-1], batch.attention_mask, self.pooling)
        other = torch.as_tensor(self.vectors, dtype=pooled.dtype, device=pooled.device)
        return similarity(pooled, other[outcome], self.measure)


Follow = ClassProbability | NextTokenProbability | SimilarityValue


def default_follow(adapter: Any) -> Follow:
    """What the metrics follow for a model's task: its class or next-token probability."""
    if adapter.task == "sequence-classification":
        return ClassProbability()
    if adapter.task == "causal-lm":
        return NextTokenProbability()
    raise TextlensError(
        f"faithfulness metrics need a sequence classifier or a causal LM (this model is "
        f"{adapter.task}); for a sentence encoder, follow a similarity "
        "(textlens.targets.Similarity)"
    )

"""Where each architecture keeps its parts: the one table of architecture knowledge.

Paths are relative to the model's base model (``model.base_model``). A path whose module does not
exist in a given checkpoint (e.g. DeBERTa-v3 has no position embedding table) resolves to None.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wiring:
    """Module paths of one architecture family.

    Attributes:
        layers: The list of transformer blocks, or None when blocks are shared (ALBERT); the
            per-layer hidden states are then read from ``output_hidden_states``.
        position: The learned absolute position embedding table, if any.
        token_type: The token type (segment) embedding table, if any.
        causal: Whether the model reads left to right only (decoder-only language models).
    """

    layers: str | None
    position: str | None = None
    token_type: str | None = None
    causal: bool = False


_BERT_LIKE = Wiring(
    layers="encoder.layer",
    position="embeddings.position_embeddings",
    token_type="embeddings.token_type_embeddings",
)
_DECODER = Wiring(layers="layers", causal=True)

WIRING: dict[str, Wiring] = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "xlm-roberta": _BERT_LIKE,
    "camembert": _BERT_LIKE,
    "electra": _BERT_LIKE,
    "deberta-v2": _BERT_LIKE,
    "deberta": _BERT_LIKE,
    "albert": Wiring(
        layers=None,
        position="embeddings.position_embeddings",
        token_type="embeddings.token_type_embeddings",
    ),
    "distilbert": Wiring(layers="transformer.layer", position="embeddings.position_embeddings"),
    "gpt2": Wiring(layers="h", position="wpe", causal=True),
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "qwen3": _DECODER,
    "gemma": _DECODER,
    "gemma2": _DECODER,
    "phi3": _DECODER,
}

FALLBACK = Wiring(layers=None)
"""Used for an architecture not in the table: word embeddings and hidden states only."""


def wiring_for(model_type: str) -> Wiring:
    return WIRING.get(model_type, FALLBACK)

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
        relevance: Whether the relevance method's rules are wired for this family (and tested
            for conservation): its norms, activations, attention and heads are the ones
            ``HFAdapter.relevance_parts`` finds.
        gated_mlp: Its feed-forward blocks are gated (``down_proj(act_fn(gate_proj(x)) *
            up_proj(x))``, Llama-style).
        tanh_head: Its classification head applies ``torch.tanh`` between two linear layers
            (``dense`` and ``out_proj``, RoBERTa-style), which no module hook can reach.
    """

    layers: str | None
    position: str | None = None
    token_type: str | None = None
    causal: bool = False
    relevance: bool = False
    gated_mlp: bool = False
    tanh_head: bool = False


_BERT_LIKE = Wiring(
    layers="encoder.layer",
    position="embeddings.position_embeddings",
    token_type="embeddings.token_type_embeddings",
)
_DECODER = Wiring(layers="layers", causal=True)
_GATED_DECODER = Wiring(layers="layers", causal=True, relevance=True, gated_mlp=True)

WIRING: dict[str, Wiring] = {
    "bert": Wiring(
        layers="encoder.layer",
        position="embeddings.position_embeddings",
        token_type="embeddings.token_type_embeddings",
        relevance=True,
    ),
    "roberta": Wiring(
        layers="encoder.layer",
        position="embeddings.position_embeddings",
        token_type="embeddings.token_type_embeddings",
        relevance=True,
        tanh_head=True,
    ),
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
    "distilbert": Wiring(
        layers="transformer.layer", position="embeddings.position_embeddings", relevance=True
    ),
    "gpt2": Wiring(layers="h", position="wpe", causal=True, relevance=True),
    "llama": _GATED_DECODER,
    "mistral": _GATED_DECODER,
    "qwen2": _GATED_DECODER,
    "qwen3": _DECODER,
    "gemma": _DECODER,
    "gemma2": _DECODER,
    "phi3": _DECODER,
}

FALLBACK = Wiring(layers=None)
"""Used for an architecture not in the table: word embeddings and hidden states only."""


def wiring_for(model_type: str) -> Wiring:
    return WIRING.get(model_type, FALLBACK)


def relevance_families() -> list[str]:
    """The architectures the relevance method's rules are wired for."""
    return sorted(name for name, wiring in WIRING.items() if wiring.relevance)

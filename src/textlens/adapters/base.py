"""The ModelAdapter protocol: what every attribution method may ask of a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from textlens.batch import TokenBatch
from textlens.lazy import torch

TASKS = (
    "sequence-classification",
    "question-answering",
    "token-classification",
    "causal-lm",
    "seq2seq-lm",
    "base",
)
"""The model tasks an adapter can have (``ModelAdapter.task``)."""


@dataclass(frozen=True)
class RelevanceParts:
    """Where a model's rules for relevance propagation apply (``ModelAdapter.relevance_parts``).

    Attributes:
        norms: ``(module, kind)`` for every normalisation, kind ``"layer"`` (LayerNorm: weight,
            bias, ``eps``) or ``"rms"`` (RMSNorm: weight, ``variance_epsilon`` or ``eps``).
        activations: Element-wise activation modules (GELU, SiLU, tanh...).
        gated: Gated feed-forward modules: ``down_proj(act_fn(gate_proj(x)) * up_proj(x))``.
        tanh_heads: Classification heads ``out_proj(tanh(dense(x[:, 0])))`` (dropout between).
        biased: Modules that add a bias to their output (linear layers).
        configs: The configuration objects whose ``_attn_implementation`` picks the attention.
    """

    norms: list[tuple[Any, str]] = field(default_factory=list)
    activations: list[Any] = field(default_factory=list)
    gated: list[Any] = field(default_factory=list)
    tanh_heads: list[Any] = field(default_factory=list)
    biased: list[Any] = field(default_factory=list)
    configs: list[Any] = field(default_factory=list)


@runtime_checkable
class ModelAdapter(Protocol):
    """A model and tokenizer seen through one interface.

    Methods receive ``model`` (an adapter), ``batch`` (its ``encode`` output) and a bound target;
    these arguments mean the same everywhere and are documented here only.
    """

    name: str
    task: str
    device: torch.device
    n_layers: int
    pad_token_id: int
    tokenizer: Any
    """The HF tokenizer (chat templates, decoding generated ids)."""
    takes_token_types: bool
    """Whether the model reads token type ids (BERT's segments)."""
    keeps_logits: bool
    """Whether ``forward(..., logits_at=...)`` computes a causal LM's logits at some positions."""
    runs_in_pieces: bool
    """Whether ``forward_pieces`` can run the model over consecutive pieces of positions."""

    @property
    def labels(self) -> tuple[str, ...] | None: ...

    @property
    def max_length(self) -> int:
        """The most tokens one text may have."""
        ...

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's weights (``embed`` gives float32 whatever it is)."""
        ...

    @property
    def multi_label(self) -> bool:
        """Whether a classifier's labels are independent (sigmoid probabilities)."""
        ...

    @property
    def vocab_size(self) -> int:
        """Rows of a causal LM's output layer (0 when there is none)."""
        ...

    @property
    def attention_heads(self) -> int:
        """Attention heads per layer."""
        ...

    def output_layer(self) -> Any:
        """A causal LM's position-wise linear output layer, or None."""
        ...

    def generate_ids(
        self, prompt_ids: list[int], n: int, sample_seed: int | None, stopping: Any = None
    ) -> list[int]:
        """A causal LM's continuation of ``prompt_ids`` (greedy, or sampled with the seed)."""
        ...

    def forward_pieces(
        self,
        embeds: torch.Tensor,
        batch: TokenBatch,
        rows: torch.Tensor,
        ends: list[int],
        logits_at: torch.Tensor,
    ) -> list[Any]:
        """A causal LM run over pieces of positions with a key-value cache (``runs_in_pieces``)."""
        ...

    def class_probabilities(self, text: str | tuple[str, str]) -> dict[str, float]:
        """A classifier's probability of every class for one text."""
        ...

    def input_vectors(self, embeds: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
        """Each token's input vector as the model adds it up (word, position, token type)."""
        ...

    def relevance_parts(self) -> RelevanceParts:
        """Where the relevance method's rules apply (one line when they are not wired)."""
        ...

    @property
    def embed_dim(self) -> int:
        """Width of the word embeddings."""
        ...

    def activation_bytes(self, rows: int, width: int) -> int:
        """Rough memory a forward and backward pass keeps for ``rows`` texts of ``width``."""
        ...

    def fingerprint(self) -> str:
        """A short hash of what the model computes, for caches of its outputs."""
        ...

    @property
    def causal(self) -> bool:
        """Whether the model reads left to right only (a decoder-only language model)."""
        ...

    def embedding_spread(self) -> float:
        """Standard deviation of the word embedding table's values."""
        ...

    def special_token_id(self, kind: str) -> int:
        """Id of the ``pad``, ``mask`` or ``unk`` token (with a fallback where there is none)."""
        ...

    def sub_embeddings(self) -> dict[str, torch.nn.Module]:
        """The embedding tables: ``word`` always, ``position`` / ``token_type`` if present."""
        ...

    def override_embeddings(
        self, replacements: dict[str, torch.Tensor]
    ) -> AbstractContextManager[None]:
        """Within the block, sub-embedding tables return the given tensors instead."""
        ...

    def eager_attention(self) -> AbstractContextManager[None]:
        """Within the block, attention runs eagerly (so it can return its weights)."""
        ...

    def frozen(self) -> AbstractContextManager[None]:
        """Within the block, the weights need no gradients (backward passes skip them)."""
        ...

    def hidden_state_at(
        self, embeds: torch.Tensor, batch: TokenBatch, rows: torch.Tensor, layer: int
    ) -> torch.Tensor:
        """Hidden states ``(N, T, H)`` after block ``layer`` (0 = the embedding output),
        running no further than needed."""
        ...

    def entering_blocks(self, states: torch.Tensor) -> AbstractContextManager[None]:
        """Within the block, the first transformer block reads ``states`` ``(N, T, H)`` instead
        of the embedding module's output (so that output itself can be perturbed)."""
        ...

    def altering_states(
        self, layer: int, alter: Callable[[torch.Tensor], torch.Tensor]
    ) -> AbstractContextManager[None]:
        """Within the block, the hidden states after block ``layer`` (0 = the embedding output)
        pass through ``alter`` before the rest of the model reads them."""
        ...

    def encode(
        self,
        texts: Sequence[str | tuple[str, str]],
        max_length: int | None = None,
        warn: bool = True,
        truncate: str | None = None,
        documents: Sequence[Sequence[tuple[int, int]]] | None = None,
    ) -> TokenBatch:
        """Tokenize texts into a right-padded batch; ``truncate`` (``"left"``/``"right"``) says
        which end of a text longer than the limit is cut (None: the model's usual side)."""
        ...

    def embed(self, batch: TokenBatch, input_ids: torch.Tensor | None = None) -> torch.Tensor: ...

    def baseline_ids(self, batch: TokenBatch, token: str = "pad") -> torch.Tensor: ...

    def forward(
        self,
        embeds: torch.Tensor,
        batch: TokenBatch,
        rows: torch.Tensor | None = None,
        *,
        hidden_states: bool = False,
        attentions: bool = False,
        logits_at: torch.Tensor | None = None,
    ) -> Any: ...

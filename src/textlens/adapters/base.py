"""The ModelAdapter protocol: what every attribution method may ask of a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from textlens.batch import TokenBatch
from textlens.lazy import torch


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

    @property
    def labels(self) -> tuple[str, ...] | None: ...

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
    ) -> Any: ...

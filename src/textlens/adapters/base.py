"""The ModelAdapter protocol: what every attribution method may ask of a model."""

from __future__ import annotations

from collections.abc import Sequence
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

    def encode(
        self, texts: Sequence[str | tuple[str, str]], max_length: int | None = None
    ) -> TokenBatch: ...

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

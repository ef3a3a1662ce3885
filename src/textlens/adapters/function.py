"""FunctionAdapter: explain a user's ``forward(embeddings, attention_mask) -> logits``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

from textlens.adapters.encoding import EncodingAdapter, digest_weights
from textlens.batch import TokenBatch
from textlens.cancel import check as check_cancelled
from textlens.devices import resolve_device
from textlens.errors import TextlensError
from textlens.lazy import torch


class FunctionAdapter(EncodingAdapter):
    """Escape hatch: explain a user's ``forward(embeddings, attention_mask) -> logits``.

    Args:
        forward: Maps word embeddings ``(N, T, K)`` and the attention mask ``(N, T)`` to logits
            ``(N, C)`` (or any tensor whose rows the target can read).
        tokenizer: A HF tokenizer for the texts.
        embeddings: The word embedding module (``nn.Embedding``) that ``forward`` expects.
        labels: Class names, in class-index order.
    """

    def __init__(
        self,
        forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        tokenizer: Any,
        embeddings: torch.nn.Module,
        labels: Sequence[str] | None = None,
        name: str = "custom-forward",
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = resolve_device(device)
        self.model = embeddings.to(self.device)
        self.tokenizer = tokenizer
        self.config = SimpleNamespace(model_type="custom")
        self.task = "sequence-classification"
        self.name = name
        self.word_embeddings = embeddings
        self.position_embeddings = None
        self.token_type_embeddings = None
        self.n_layers = 0
        self.takes_token_types = False
        self._forward_fn = forward
        self._labels = tuple(labels) if labels is not None else None
        self.pad_token_id = self._pick_pad_id()

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self._labels

    keeps_logits = False
    runs_in_pieces = False
    attention_heads = 1
    multi_label = False

    @property
    def vocab_size(self) -> int:
        return 0  # a classifier's logits: no vocabulary

    def output_layer(self) -> None:
        return None

    def generate_ids(self, *args: Any, **kwargs: Any) -> list[int]:
        raise TextlensError("a custom forward function cannot generate text")

    def forward_pieces(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise TextlensError("a custom forward function cannot run in pieces")

    def activation_bytes(self, rows: int, width: int) -> int:
        """A guess for an unknown function: twenty embedding-sized tensors a row."""
        return rows * width * self.embed_dim * 4 * 20

    def fingerprint(self) -> str:
        """A hash of the embeddings and of what the forward function computes.

        The function is run on a fixed, seeded probe input, so that a changed function (another
        model behind it, other code) gives another fingerprint even under the same name.
        """
        digest = hashlib.sha256(f"custom:{self.name}".encode())
        digest_weights(digest, self.word_embeddings)
        weight = self.word_embeddings.weight
        gen = torch.Generator(device="cpu").manual_seed(1234)
        probe = torch.randn((2, 5, weight.shape[-1]), generator=gen).to(weight)
        mask = torch.ones((2, 5), dtype=torch.long, device=weight.device)
        try:
            with torch.no_grad():
                out = self._forward_fn(probe, mask)
            values = out.detach().double().cpu().flatten()
        except Exception:  # a function that cannot take the probe: never share its cache
            digest.update(f"{id(self._forward_fn)}:{os.getpid()}:{time.time()}".encode())
            return digest.hexdigest()[:16]
        digest.update(f"{tuple(out.shape)}".encode())
        for v in values[:: max(1, len(values) // 64)].tolist():
            digest.update(f"{v:.6e}".encode())
        return digest.hexdigest()[:16]

    @property
    def max_length(self) -> int:
        limit = getattr(self.tokenizer, "model_max_length", 512)
        return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else 512

    def forward(  # type: ignore[override]
        self,
        embeds: torch.Tensor,
        batch: TokenBatch,
        rows: torch.Tensor | None = None,
        *,
        hidden_states: bool = False,
        attentions: bool = False,
        logits_at: torch.Tensor | None = None,
    ) -> Any:
        if logits_at is not None:
            raise TextlensError("a custom forward function computes all of its outputs")
        if hidden_states or attentions:
            raise TextlensError(
                "a custom forward function exposes no layers: use a method that needs none "
                "(gradient, integrated-gradients, occlusion, ...)"
            )
        check_cancelled()
        index = rows if rows is not None else slice(None)
        logits = self._forward_fn(embeds, batch.attention_mask[index])
        return SimpleNamespace(logits=logits)

    @property
    def causal(self) -> bool:
        return False

    def sub_embeddings(self) -> dict[str, torch.nn.Module]:
        return {"word": self.word_embeddings}

    def input_vectors(self, embeds: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
        """The function's input is the word embeddings themselves."""
        return embeds.detach()

    def relevance_parts(self) -> Any:
        """The rules' modules in a forward function that is a ``torch.nn.Module`` (its norms,
        activation modules and biased linear layers); a plain function has none to find."""
        from textlens.adapters.hf import relevance_parts_of

        if not isinstance(self._forward_fn, torch.nn.Module):
            raise TextlensError(
                "the relevance method needs the forward function's layers: give it as a "
                "torch.nn.Module (its activations as modules), or use gradient-x-input"
            )
        return relevance_parts_of(self._forward_fn)

    @contextlib.contextmanager
    def eager_attention(self) -> Iterator[None]:
        yield  # a plain function has no attention to switch

    def hidden_state_at(
        self, embeds: torch.Tensor, batch: TokenBatch, rows: torch.Tensor, layer: int
    ) -> torch.Tensor:
        raise TextlensError(
            "a custom forward function exposes no layers: use a method that needs none "
            "(gradient, integrated-gradients, occlusion, ...)"
        )

    def altering_states(self, layer: int, alter: Any) -> Iterator[None]:
        raise TextlensError(
            "a custom forward function exposes no layers: its hidden states cannot be altered"
        )

    def entering_blocks(self, states: torch.Tensor) -> Iterator[None]:
        raise TextlensError(
            "a custom forward function has no embedding module: perturb its input embeddings "
            "(noise_at='word-embeddings')"
        )

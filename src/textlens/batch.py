"""TokenBatch: a list of texts tokenized and right-padded, with everything methods need."""

from __future__ import annotations

from dataclasses import dataclass, replace

from textlens.lazy import torch

Offsets = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class TokenBatch:
    """Token ids and masks for ``B`` texts, right-padded to ``T`` tokens.

    Attributes:
        texts: The texts as explained (a question/context pair is joined with a newline).
        input_ids: Token ids, ``(B, T)``.
        attention_mask: 1 for real tokens, 0 for padding, ``(B, T)``.
        special_mask: True for special tokens such as [CLS] / [SEP], ``(B, T)``; False on padding.
        token_type_ids: Segment ids ``(B, T)``, or None when the model takes none.
        tokens: Per text, the token strings of its real (unpadded) tokens.
        offsets: Per text, ``(start, end)`` character spans into the text; ``(0, 0)`` for specials.
        n_truncated: Per text, how many tokens were cut to fit the model's limit.
        second_start: Per text, the character where the second text of a pair (a question
            answering context) starts in ``texts``; empty when no text is a pair.
        documents: Per text, the character spans of the user's documents in it (a prompt
            built from documents and a question); empty when no text has any.
        n_source: For an encoder-decoder model, how many of each row's first tokens are the
            encoder's input (the source); the rest are the decoder's. 0 for other models.
    """

    texts: tuple[str, ...]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    special_mask: torch.Tensor
    token_type_ids: torch.Tensor | None
    tokens: tuple[tuple[str, ...], ...]
    offsets: tuple[Offsets, ...]
    n_truncated: tuple[int, ...]
    second_start: tuple[int | None, ...] = ()
    documents: tuple[tuple[tuple[int, int], ...], ...] = ()
    n_source: int = 0

    def __post_init__(self) -> None:
        shape = tuple(self.input_ids.shape)
        if len(shape) != 2 or len(self.texts) != shape[0]:
            raise ValueError(f"input_ids must be (batch, token); got {shape}")
        for name in ("attention_mask", "special_mask", "token_type_ids"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(value.shape)}, input_ids {shape}")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def lengths(self) -> torch.Tensor:
        """Real tokens per text, ``(B,)``."""
        return self.attention_mask.sum(dim=1)

    @property
    def device(self) -> torch.device:
        return self.input_ids.device

    @property
    def real_mask(self) -> torch.Tensor:
        """True for real (non-pad) tokens, ``(B, T)``."""
        return self.attention_mask.bool()

    def to(self, device: torch.device | str) -> TokenBatch:
        """The same batch with its tensors on ``device``."""
        tt = self.token_type_ids
        return replace(
            self,
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            special_mask=self.special_mask.to(device),
            token_type_ids=None if tt is None else tt.to(device),
        )

    def select(self, rows: list[int] | range) -> TokenBatch:
        """A sub-batch of the given rows, trimmed to its own longest text."""
        rows = list(rows)
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        width = int(self.attention_mask[index].sum(dim=1).max())
        tt = self.token_type_ids

        def take(t: torch.Tensor) -> torch.Tensor:
            return t[index, :width]

        return TokenBatch(
            texts=tuple(self.texts[i] for i in rows),
            input_ids=take(self.input_ids),
            attention_mask=take(self.attention_mask),
            special_mask=take(self.special_mask),
            token_type_ids=None if tt is None else take(tt),
            tokens=tuple(self.tokens[i] for i in rows),
            offsets=tuple(self.offsets[i] for i in rows),
            n_truncated=tuple(self.n_truncated[i] for i in rows),
            second_start=tuple(self.second_start[i] for i in rows) if self.second_start else (),
            documents=tuple(self.documents[i] for i in rows) if self.documents else (),
            n_source=self.n_source,
        )

    def in_second(self) -> torch.Tensor:
        """True for the real, non-special tokens of the second text of each pair ``(B, T)``
        (all real tokens of a text that is no pair)."""
        out = self.real_mask & ~self.special_mask
        if not self.second_start:
            return out
        for b, start in enumerate(self.second_start):
            if start is None:
                continue
            for t, (a, _) in enumerate(self.offsets[b]):
                if a < start:
                    out[b, t] = False
        return out

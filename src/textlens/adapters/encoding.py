"""What every adapter does the same way: tokenize texts into a TokenBatch, look up embeddings,
build baselines, freeze weights and swap sub-embedding outputs.

``EncodingAdapter`` is a base class; a subclass sets ``tokenizer``, ``device``, ``model`` (the
module whose weights count), ``word_embeddings``, ``task`` and ``takes_token_types``, and
provides ``max_length``, ``labels``, ``forward`` and ``sub_embeddings``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from textlens.batch import TokenBatch
from textlens.errors import TextlensError
from textlens.lazy import torch
from textlens.text import check_unicode


def readable_token(token: str, covered: str) -> str:
    """What a person reads for a token: the text it covers, unless the tokenizer's own string
    says the same (WordPiece's ``##ing``, an uncased vocabulary's lower case).

    Byte-level BPE and SentencePiece vocabularies write markers (``Ġcapital``, ``▁Paris``) and
    bytes (``Ã©`` for ``é``) that nobody should have to decode; whitespace-only text is shown as
    ``␣`` per space and ``\\n`` per line break; the spaces around a word are left out.
    """
    if token == covered or token.lower() == covered.lower():
        return token
    if token.startswith("##") and token[2:].lower() == covered.lower():
        return token
    if not covered.strip():
        return covered.replace(" ", "\u2423").replace("\n", "\\n").replace("\t", "\\t")
    return covered.strip()  # a space the token carries shows as the gap between tokens


def _half() -> tuple[Any, ...]:
    return (torch.float16, torch.bfloat16)


class _Half:
    """``dtype in HALF``: float16 or bfloat16 (resolved when first asked, so that importing
    this module does not import torch)."""

    def __contains__(self, dtype: Any) -> bool:
        return dtype in _half()


HALF = _Half()


class TruncationWarning(UserWarning):
    """A text was longer than the model accepts and was cut."""


class EncodingAdapter:
    """Tokenization, embeddings, baselines and weight handling shared by the adapters."""

    tokenizer: Any
    device: Any
    model: Any
    word_embeddings: Any
    task: str
    takes_token_types: bool
    pad_token_id: int

    @property
    def max_length(self) -> int:
        raise NotImplementedError

    @property
    def labels(self) -> tuple[str, ...] | None:
        raise NotImplementedError

    def forward(self, embeds: Any, batch: TokenBatch, rows: Any = None, **kwargs: Any) -> Any:
        """Run the model from word embeddings (see ``ModelAdapter.forward``)."""
        raise NotImplementedError

    def sub_embeddings(self) -> dict[str, Any]:
        raise NotImplementedError

    def _pick_pad_id(self) -> int:
        for attr in ("pad_token_id", "unk_token_id", "eos_token_id"):
            value = getattr(self.tokenizer, attr, None)
            if value is not None:
                return int(value)
        return 0

    def special_token_id(self, kind: str) -> int:
        """Id of the ``pad``, ``mask`` or ``unk`` token (falling back to pad, then eos)."""
        value = getattr(self.tokenizer, f"{kind}_token_id", None)
        return self.pad_token_id if value is None else int(value)

    def encode(
        self,
        texts: Sequence[str | tuple[str, str]],
        max_length: int | None = None,
        warn: bool = True,
        truncate: str | None = None,
        documents: Sequence[Sequence[tuple[int, int]]] | None = None,
    ) -> TokenBatch:
        """Tokenize texts (or ``(question, context)`` pairs) into a right-padded TokenBatch.

        Texts longer than the model's limit are truncated with one ``TruncationWarning``; a
        causal LM's are refused unless ``truncate`` is given (its next token depends on the end
        that truncation would cut).

        Args:
            truncate: ``"right"`` keeps a long text's first tokens, ``"left"`` its last ones;
                None: ``"right"`` for encoders, a refusal for causal LMs.
            documents: Per text, the character spans of the documents it holds (kept in the
                batch for document units).
        """
        if truncate not in (None, "left", "right"):
            raise TextlensError(f"truncate={truncate!r} is not valid: use 'left' or 'right'")
        if not texts:
            raise TextlensError("no texts to explain: pass at least one non-empty text")
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise TextlensError(
                f"max_length={max_length!r} is not valid: use a whole number of tokens, at least 1"
            )
        limit = min(max_length or self.max_length, self.max_length)
        rows: list[dict[str, Any]] = []
        joined: list[str] = []
        starts: list[int | None] = []
        for item in texts:
            parts: tuple[str, ...] = item if isinstance(item, tuple) else (item,)
            if not all(isinstance(p, str) for p in parts) or len(parts) not in (1, 2):
                raise TextlensError(
                    f"a text must be a string or a (question, context) pair, got {item!r}"
                )
            if not "".join(parts).strip():
                raise TextlensError("the text is empty: give at least one word to explain")
            for part in parts:
                check_unicode(part)
            extra = self._n_special(len(parts))
            if limit <= extra:
                raise TextlensError(
                    f"a limit of {limit} tokens leaves no room for words: this model adds {extra} "
                    f"special tokens; use a max_length of at least {extra + 1}"
                )
            row = self._encode_one(parts, limit, truncate)
            if all(row["special"]):
                raise TextlensError(
                    "the text has no words the tokenizer can read (only invisible or control "
                    "characters): give at least one word to explain"
                )
            rows.append(row)
            joined.append("\n".join(parts))
            starts.append(len(parts[0]) + 1 if len(parts) == 2 else None)
        cut = [r["n_truncated"] for r in rows]
        if warn and any(cut):
            kept = [len(r["ids"]) for r, c in zip(rows, cut, strict=True) if c]
            warnings.warn(
                f"{sum(1 for c in cut if c)} text(s) longer than {limit} tokens were truncated; "
                f"kept the first {min(kept)} tokens (with special tokens)",
                TruncationWarning,
                stacklevel=3,
            )
        width = max(len(r["ids"]) for r in rows)
        n = len(rows)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        special = torch.zeros((n, width), dtype=torch.bool)
        types = torch.zeros((n, width), dtype=torch.long) if self.takes_token_types else None
        for i, r in enumerate(rows):
            k = len(r["ids"])
            input_ids[i, :k] = torch.tensor(r["ids"])
            attention[i, :k] = 1
            special[i, :k] = torch.tensor(r["special"], dtype=torch.bool)
            if types is not None:
                types[i, :k] = torch.tensor(r["types"])
        return TokenBatch(
            texts=tuple(joined),
            input_ids=input_ids,
            attention_mask=attention,
            special_mask=special,
            token_type_ids=types,
            tokens=tuple(tuple(r["tokens"]) for r in rows),
            offsets=tuple(tuple(r["offsets"]) for r in rows),
            n_truncated=tuple(cut),
            second_start=tuple(starts) if any(s is not None for s in starts) else (),
            documents=tuple(tuple((int(a), int(b)) for a, b in d) for d in documents)
            if documents
            else (),
        ).to(self.device)

    def _n_special(self, n_parts: int) -> int:
        """How many special tokens the tokenizer adds to one text (or a pair)."""
        count = getattr(self.tokenizer, "num_special_tokens_to_add", None)
        try:
            return int(count(pair=n_parts == 2)) if count is not None else 0
        except (TypeError, ValueError):
            return 0

    def _encode_one(
        self, parts: tuple[str, ...], limit: int, truncate: str | None = None
    ) -> dict[str, Any]:
        tok = self.tokenizer
        fast = bool(getattr(tok, "is_fast", False))
        kwargs: dict[str, Any] = {
            "return_special_tokens_mask": True,
            "return_token_type_ids": self.takes_token_types,
            "return_offsets_mapping": fast,
        }
        full = tok(*parts, truncation=False, **kwargs)
        n_full = len(full["input_ids"])
        if n_full > limit and truncate is None and getattr(self, "causal", False):
            raise TextlensError(
                f"the text is {n_full} tokens and this causal LM reads at most {limit} here "
                f"(the model's context is {self.max_length}): its next token depends on the "
                "end of the text, so textlens does not cut it; shorten the text"
            )
        if n_full > limit:
            strategy = "only_second" if len(parts) == 2 else True
            side = getattr(tok, "truncation_side", "right")
            tok.truncation_side = truncate or "right"
            try:
                enc = tok(*parts, truncation=strategy, max_length=limit, **kwargs)
            finally:
                tok.truncation_side = side
        else:
            enc = full
        ids = list(enc["input_ids"])
        special = [bool(s) for s in enc["special_tokens_mask"]]
        if fast:
            seq_ids = enc.sequence_ids() if hasattr(enc, "sequence_ids") else [0] * len(ids)
            shift = len(parts[0]) + 1
            offsets = [
                (0, 0) if sp else ((a + shift, b + shift) if seq == 1 else (a, b))
                for (a, b), sp, seq in zip(enc["offset_mapping"], special, seq_ids, strict=True)
            ]
        else:
            offsets = [(0, 0)] * len(ids)
        tokens = [str(t) for t in tok.convert_ids_to_tokens(ids)]
        if fast:
            text, unknown = "\n".join(parts), getattr(tok, "unk_token", None)

            def spelled(token: str) -> str:  # a piece that covers no characters (a lone space)
                try:
                    return str(tok.convert_tokens_to_string([token]))
                except (TypeError, ValueError, KeyError):
                    return token

            tokens = [  # an unknown token stays visible as such: the model never saw the word
                t if sp or t == unknown else readable_token(t, text[a:b] if b > a else spelled(t))
                for t, (a, b), sp in zip(tokens, offsets, special, strict=True)
            ]
        return {
            "ids": ids,
            "special": special,
            "types": list(enc.get("token_type_ids") or [0] * len(ids)),
            "tokens": tokens,
            "offsets": offsets,
            "n_truncated": max(0, n_full - len(ids)),
        }

    def class_probabilities(self, text: str | tuple[str, str]) -> dict[str, float]:
        """The classifier's probability for every class of one text."""
        if self.task != "sequence-classification":
            raise TextlensError("class probabilities need a sequence classifier")
        batch = self.encode([text], warn=False)
        with torch.no_grad():
            logits = self.forward(self.embed(batch), batch).logits[0]
        values = logits.float()
        independent = getattr(self, "multi_label", False)  # each label its own sigmoid
        probs = (values.sigmoid() if independent else values.softmax(-1)).tolist()
        names = self.labels or tuple(str(i) for i in range(len(probs)))
        return dict(zip(names, probs, strict=True))

    def embed(self, batch: TokenBatch, input_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Word embeddings of the batch's tokens (or of ``input_ids``), ``(B, T, K)``; in
        float32 for a half-precision model, so that the methods' arithmetic (path sums, noise,
        differences) is float32 (``forward`` casts its input to the model's dtype)."""
        values = self.word_embeddings(batch.input_ids if input_ids is None else input_ids)
        return values.float() if values.dtype in HALF else values

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's weights."""
        return self.word_embeddings.weight.dtype

    def baseline_ids(self, batch: TokenBatch, token: str = "pad") -> torch.Tensor:
        """Reference ids: every real token replaced by ``token``; special tokens and pads kept."""
        ids = torch.full_like(batch.input_ids, self.special_token_id(token))
        keep = batch.special_mask | ~batch.real_mask
        return torch.where(keep, batch.input_ids, ids)

    @property
    def embed_dim(self) -> int:
        """Width of the word embeddings."""
        return int(self.word_embeddings.weight.shape[-1])

    def embedding_spread(self) -> float:
        """Standard deviation of the word embedding table's values."""
        return float(self.word_embeddings.weight.detach().std())

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The weights without gradients inside the block (backward passes skip them)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    @contextlib.contextmanager
    def override_embeddings(self, replacements: dict[str, torch.Tensor]) -> Iterator[None]:
        """Replace the outputs of sub-embedding tables (``position``, ``token_type``) in a block.

        Each replacement must broadcast against what the table returns; the hooks are always
        removed, even when the block raises.
        """
        handles = []
        try:
            for kind, value in replacements.items():
                module = self.sub_embeddings().get(kind)
                if module is None:
                    raise TextlensError(f"this model has no {kind} embeddings")
                handles.append(module.register_forward_hook(_replace_output(value)))
            yield
        finally:
            for handle in handles:
                handle.remove()


def digest_weights(digest: Any, module: Any) -> None:
    """Add a sample of a module's weights (every n-th tensor's sum) to a hash."""
    params = list(module.parameters())
    with torch.no_grad():
        for p in params[:: max(1, len(params) // 16)]:
            digest.update(f"{float(p.double().sum()):.10e}".encode())


def _replace_output(value: torch.Tensor) -> Callable[..., torch.Tensor]:
    def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        return value.to(output.dtype)

    return hook

"""Seq2SeqAdapter: an encoder-decoder model (T5, BART, Marian...) seen as one sequence.

A row of a batch is the source (the encoder's input) followed by the decoder's input: its
start token and the output tokens written so far. The methods see one sequence of word
embeddings, as they do for any model; ``forward`` splits it at ``batch.n_source``, runs the
encoder on the first part and the decoder on the rest, and puts the outputs back on the one
sequence's positions:

- logits: the decoder's, and ``logits_at``, the sequence's positions they are at (the
  source predicts nothing); with ``logits_at`` given, only the positions asked for.
- hidden states: layer ``l`` is the encoder's layer ``l`` over the source and the decoder's
  layer ``l`` over the rest (when both have as many layers).
- attention weights: layer ``l``'s map over the whole sequence: the encoder's self-attention
  among source tokens, and for a decoder token its cross-attention over the source and its
  self-attention over the decoder tokens before it (each of the two sums to one).

The decoder reads left to right, so the output at a decoder position depends on the source and
on the decoder tokens up to it: the sequence is ``causal`` in the sense the methods use, and the
rows of a generated answer share their passes as a causal LM's do.
"""

from __future__ import annotations

from typing import Any

from textlens.adapters.encoding import HALF
from textlens.adapters.hf import HFAdapter, is_seq2seq_lm
from textlens.batch import TokenBatch
from textlens.cancel import check as check_cancelled
from textlens.errors import TextlensError
from textlens.lazy import torch

NOT_ALONE = (
    "an encoder-decoder model is explained through what it writes: give the text to translate or "
    "summarise with generate=N or continuation=TEXT (--generate / --continuation)"
)


def _layers(config: Any, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 0


class Seq2SeqAdapter(HFAdapter):
    """An encoder-decoder language model and its tokenizer (see the module's description).

    Args:
        model: A ``PreTrainedModel`` with an encoder, a decoder and a language-model head
            (``AutoModelForSeq2SeqLM``).
        tokenizer: Its tokenizer.
        task: ``"seq2seq-lm"`` (the default).
        name: Shown in explanations.
        device: Where the model runs.
    """

    encoder_decoder = True

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        task: str | None = None,
        name: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not is_seq2seq_lm(model):
            raise TextlensError(
                f"{type(model).__name__} is not an encoder-decoder language model: load it with "
                "load_model(model, tokenizer)"
            )
        if task not in (None, "seq2seq-lm"):
            raise TextlensError(f"an encoder-decoder model's task is seq2seq-lm, not {task!r}")
        super().__init__(model, tokenizer, task="seq2seq-lm", name=name, device=device)
        cfg = self.config
        self.encoder_embeddings: torch.nn.Module = self.model.get_encoder().get_input_embeddings()
        self.decoder_embeddings: torch.nn.Module = self.model.get_decoder().get_input_embeddings()
        self.word_embeddings = self.encoder_embeddings
        self.encoder_layers = _layers(cfg, "encoder_layers", "num_layers", "num_hidden_layers")
        self.decoder_layers = _layers(cfg, "decoder_layers", "num_decoder_layers", "num_layers")
        self.n_layers = self.decoder_layers if self.decoder_layers == self.encoder_layers else 0
        self.keeps_logits = True  # ``forward`` reads the decoder's logits where asked
        self.runs_in_pieces = False
        start = getattr(cfg, "decoder_start_token_id", None)
        if start is None:
            start = getattr(
                getattr(model, "generation_config", None), "decoder_start_token_id", None
            )
        self.start_token_id = int(start if start is not None else self.pad_token_id)
        """The token the decoder starts from (``decoder_start_token_id``)."""

    @property
    def causal(self) -> bool:
        """True: the output at a decoder position depends on the source and the decoder tokens
        up to it only."""
        return True

    @property
    def attention_heads(self) -> int:
        cfg = self.config
        return int(
            getattr(cfg, "decoder_attention_heads", 0) or getattr(cfg, "num_heads", 0)
            or getattr(cfg, "num_attention_heads", 0) or 1
        )  # fmt: skip

    @property
    def attention_in_rows(self) -> bool:
        return False

    def embed(self, batch: TokenBatch, input_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Word embeddings ``(B, T, K)``: the encoder's table for the source, the decoder's for
        the rest (in float32, as for every model)."""
        ids = batch.input_ids if input_ids is None else input_ids
        n = batch.n_source
        parts = [self.encoder_embeddings(ids[:, :n]), self.decoder_embeddings(ids[:, n:])]
        values = torch.cat(parts, dim=1)
        return values.float() if values.dtype in HALF else values

    def baseline_ids(self, batch: TokenBatch, token: str = "pad") -> torch.Tensor:
        """Reference ids: every real token replaced by ``token``; special tokens, pads and the
        decoder's start token kept."""
        ids = super().baseline_ids(batch, token)
        n = batch.n_source
        if n < ids.shape[1]:
            ids[:, n] = batch.input_ids[:, n]
        return ids

    def _end_token_id(self) -> int | None:
        end = super()._end_token_id()
        return end if end is not None else getattr(self.config, "eos_token_id", None)

    def _generation_options(self) -> dict[str, Any]:
        """The decoder starts from its start token; one beam (greedy or sampled, never a beam
        search from the model's generation config)."""
        return {"decoder_start_token_id": self.start_token_id, "num_beams": 1}

    def _generated_from(self, n_prompt: int) -> int:
        """What ``generate`` returns is the decoder's: its start token, then the output."""
        return 1

    LAYER_SCALE = 3.3
    """What a forward pass without gradients holds beyond one decoder-only block's
    ``layer_bytes``: the encoder's output, and attention biases and masks that every layer
    shares (T5 keeps one head-by-position map for the encoder's, the decoder's and the
    cross-attention). Measured on a T5-small-sized model (random weights), 110- and 407-token
    sources, 24 and 48 output tokens: occlusion and attention peaked at 2.2 to 2.7 times the
    unscaled estimate, a plain gradient at 1.0. With this scale, planned over peak: gradient x
    input 2.0, integrated gradients 1.04, attention 1.01, occlusion 1.35 (110 source tokens);
    occlusion 0.99 (407 source tokens, 48 output tokens, in batches of 12)."""

    def layer_bytes(self, rows: int, width: int) -> int:
        """One block's memory (``HFAdapter.layer_bytes``), scaled by ``LAYER_SCALE``."""
        return int(self.LAYER_SCALE * super().layer_bytes(rows, width))

    def activation_bytes(self, rows: int, width: int) -> int:
        """A forward and backward pass: every block of both stacks over about half the
        sequence (the encoder reads the source, the decoder the rest), each as an unscaled
        ``HFAdapter.layer_bytes`` with a fifth more for the cross-attention."""
        blocks = max(1, self.encoder_layers + self.decoder_layers)
        return int(1.2 * blocks * super().layer_bytes(rows, width) // 2)

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
        """Run the encoder on the source and the decoder on the rest (see the module's
        description of the outputs); ``logits_at``: sorted positions of the sequence, each at
        or after the decoder's start token."""
        from transformers.modeling_outputs import CausalLMOutput

        check_cancelled()
        n = batch.n_source
        if n <= 0 or n >= embeds.shape[1]:
            raise TextlensError(NOT_ALONE)
        index = rows if rows is not None else slice(None)
        mask = batch.attention_mask[index]
        x = embeds.to(self.dtype)
        out = self.model(
            inputs_embeds=x[:, :n],
            attention_mask=mask[:, :n],
            decoder_inputs_embeds=x[:, n:],
            decoder_attention_mask=mask[:, n:],
            output_hidden_states=hidden_states,
            output_attentions=attentions,
            use_cache=False,
            return_dict=True,
        )
        logits = out.logits.float() if out.logits.dtype in HALF else out.logits
        if logits_at is not None:
            if bool((logits_at < n).any()):
                raise TextlensError("the source predicts no token: read logits from the decoder")
            logits = logits[:, logits_at - n]
        else:  # the decoder's positions: the source predicts nothing
            logits_at = torch.arange(n, embeds.shape[1], device=logits.device)
        states = None
        if hidden_states:
            enc, dec = out.encoder_hidden_states, out.decoder_hidden_states
            if enc is not None and dec is not None and len(enc) == len(dec):
                states = tuple(torch.cat([e, d], dim=1) for e, d in zip(enc, dec, strict=True))
        maps = None
        if attentions and out.cross_attentions is not None:
            layers = zip(
                out.encoder_attentions, out.cross_attentions, out.decoder_attentions, strict=False
            )
            maps = tuple(_whole_map(e, c, d) for e, c, d in layers)
        out = CausalLMOutput(logits=logits, hidden_states=states, attentions=maps)
        out.logits_at = logits_at  # the sequence's positions the logits are at
        return out


def _whole_map(encoder: torch.Tensor, cross: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
    """One layer's attention over the whole sequence ``(N, H, S + D, S + D)`` from the encoder's
    ``(N, H, S, S)``, the cross-attention ``(N, H, D, S)`` and the decoder's ``(N, H, D, D)``."""
    n, heads, s, _ = encoder.shape
    d = decoder.shape[-1]
    whole = encoder.new_zeros((n, heads, s + d, s + d), dtype=torch.float32)
    whole[:, :, :s, :s] = encoder.float()
    whole[:, :, s:, :s] = cross.float()
    whole[:, :, s:, s:] = decoder.float()
    return whole


__all__ = ["Seq2SeqAdapter"]

"""HFAdapter: any HuggingFace model and its tokenizer behind the ModelAdapter protocol.

Architecture details (where the blocks and sub-embeddings are) come from ``wiring.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from textlens.adapters.base import TASKS, RelevanceParts
from textlens.adapters.encoding import HALF, EncodingAdapter, digest_weights
from textlens.adapters.wiring import Wiring, relevance_families, wiring_for
from textlens.batch import TokenBatch
from textlens.cancel import check as check_cancelled
from textlens.devices import resolve_device
from textlens.errors import TextlensError
from textlens.lazy import torch

CLASS_SUFFIXES = (
    ("ForSequenceClassification", "sequence-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForTokenClassification", "token-classification"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the needed layer has run."""


def relevance_parts_of(
    root: torch.nn.Module, gated: bool = False, tanh_head: bool = False
) -> RelevanceParts:
    """The norms, activations, biased layers, gated blocks, tanh heads and attention
    configurations among ``root``'s modules (see ``RelevanceParts``)."""
    from transformers.pytorch_utils import Conv1D

    parts = RelevanceParts()
    configs: dict[int, Any] = {}
    for module in root.modules():
        name = type(module).__name__
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            configs[id(config)] = config
        if isinstance(module, torch.nn.LayerNorm):
            parts.norms.append((module, "layer"))
        elif name.endswith("RMSNorm"):
            parts.norms.append((module, "rms"))
        elif _is_activation(module):
            parts.activations.append(module)
        if isinstance(module, torch.nn.Linear | Conv1D) and module.bias is not None:
            parts.biased.append(module)
        if gated and all(
            hasattr(module, a) for a in ("gate_proj", "up_proj", "down_proj", "act_fn")
        ):
            parts.gated.append(module)
        if tanh_head and name.endswith("ClassificationHead"):
            parts.tanh_heads.append(module)
    parts.configs.extend(configs.values())
    return parts


def _placed(model: Any) -> bool:
    """Whether a model was placed by its loader (``device_map``) or quantised: moving it would
    undo the split or break the quantised weights."""
    if getattr(model, "hf_device_map", None):
        return True
    return bool(getattr(model, "is_quantized", False) or getattr(model, "is_loaded_in_8bit", False)
                or getattr(model, "is_loaded_in_4bit", False))  # fmt: skip


def upcast(out: Any) -> Any:
    """A model's outputs with half-precision logits and attention weights in float32 (what
    targets and methods compute with). Hidden states stay as the model made them: a method
    takes gradients with respect to them, and a copy is on no path to the output."""
    for name in ("logits", "start_logits", "end_logits"):
        value = getattr(out, name, None)
        if isinstance(value, torch.Tensor) and value.dtype in HALF:
            out[name] = value.float()
    values = getattr(out, "attentions", None)
    if values and any(v.dtype in HALF for v in values):
        out["attentions"] = tuple(v.float() for v in values)
    return out


def _is_activation(module: Any) -> bool:
    """An element-wise activation module: transformers' own, or torch's GELU, SiLU, tanh and
    the like (not softmax, which the attention rule handles)."""
    if type(module).__module__ == "transformers.activations":
        return True
    elementwise = (
        torch.nn.GELU, torch.nn.SiLU, torch.nn.Tanh, torch.nn.ReLU, torch.nn.Mish,
        torch.nn.Sigmoid, torch.nn.LeakyReLU,
    )  # fmt: skip
    return isinstance(module, elementwise)


def is_seq2seq_lm(model: Any) -> bool:
    """Whether a HF model is an encoder-decoder language model (T5, BART, Marian...): an
    encoder, a decoder and an output layer over the vocabulary."""
    config = getattr(model, "config", None)
    if not getattr(config, "is_encoder_decoder", False):
        return False
    if not all(callable(getattr(model, n, None)) for n in ("get_encoder", "get_decoder")):
        return False
    get = getattr(model, "get_output_embeddings", None)
    return callable(get) and get() is not None


def detect_task(model: Any) -> str:
    """The task of a HF model, read from its class name (``BertForSequenceClassification``...)
    or, for an encoder-decoder language model, its configuration."""
    name = type(model).__name__
    for suffix, task in CLASS_SUFFIXES:
        if name.endswith(suffix):
            return task
    return "seq2seq-lm" if is_seq2seq_lm(model) else "base"


def _submodule(root: torch.nn.Module, path: str | None) -> torch.nn.Module | None:
    if path is None:
        return None
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


class HFAdapter(EncodingAdapter):
    """Wraps a HuggingFace model and its (fast) tokenizer for the attribution methods.

    The adapter tokenizes (``encode``), looks up word embeddings (``embed``), and runs the model
    from embeddings (``forward``), optionally returning every layer's hidden states and
    attention weights. Architecture details come from ``adapters/wiring.py``.

    Args:
        model: A ``PreTrainedModel`` (any head, or none).
        tokenizer: Its tokenizer; a fast one gives character offsets.
        task: One of ``TASKS``; read from the model's class when None.
        name: Shown in explanations; defaults to the model's ``name_or_path``.
        device: Where the model runs; ``"cuda"`` works where available.
    """

    encoder_decoder = False
    """Whether the model is an encoder-decoder (``Seq2SeqAdapter``): a row is its source and
    then the decoder's input."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        task: str | None = None,
        name: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if task is not None and task not in TASKS:
            raise TextlensError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
        if not self.encoder_decoder and is_seq2seq_lm(model) and task in (None, "seq2seq-lm"):
            raise TextlensError(
                f"{type(model).__name__} is an encoder-decoder model: wrap it with "
                "load_model(model, tokenizer) (or textlens.adapters.Seq2SeqAdapter)"
            )
        self.device = resolve_device(device)
        if _placed(model):  # split over devices or quantised: explained where it is
            self.device = model.get_input_embeddings().weight.device
            self.model = model.eval()
        else:
            self.model = model.to(self.device).eval()
        self.checkpointing = False
        """Whether the blocks recompute their activations in the backward pass now
        (``checkpointed``); memory estimates follow it."""
        self.pooling: str | None = None
        """How the model pools token vectors into one (a SentenceTransformer's ``mean`` or
        ``cls``), for similarities; None: mean."""
        self.tokenizer = tokenizer
        self.config = model.config
        self.task = task or detect_task(model)
        self.name = name or str(getattr(model, "name_or_path", "") or type(model).__name__)
        self.wiring: Wiring = wiring_for(getattr(self.config, "model_type", ""))
        base = getattr(model, "base_model", model)
        self.word_embeddings: torch.nn.Module = model.get_input_embeddings()
        self.position_embeddings = _submodule(base, self.wiring.position)
        self.token_type_embeddings = _submodule(base, self.wiring.token_type)
        self.layers = _submodule(base, self.wiring.layers)
        self.n_layers = int(
            getattr(self.config, "num_hidden_layers", None)
            or getattr(self.config, "n_layer", None)
            or (len(self.layers) if isinstance(self.layers, torch.nn.ModuleList) else 0)
        )
        accepted = set(inspect.signature(model.forward).parameters)
        self.takes_token_types = "token_type_ids" in accepted and (
            "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        )
        self.keeps_logits = self.task == "causal-lm" and "logits_to_keep" in accepted
        """Whether ``forward(..., logits_at=positions)`` computes the logits at those positions
        only (a causal LM's output layer is most of a pass over a short text)."""
        names = [n for n in ("cache", "past_key_values") if n in accepted]
        self._cache_argument = names[0] if names else None
        self.runs_in_pieces = self.causal and self.keeps_logits and self._cache_argument is not None
        """Whether ``forward_pieces`` can run the model over consecutive pieces of positions
        with a key-value cache (the decoders of ``wiring.py``, whose cached passes the tests
        check against whole ones)."""
        self.pad_token_id = self._pick_pad_id()

    @property
    def labels(self) -> tuple[str, ...] | None:
        """Class names for classification heads, in class-index order."""
        if self.task not in ("sequence-classification", "token-classification"):
            return None
        id2label = getattr(self.config, "id2label", None) or {}
        n = int(getattr(self.config, "num_labels", len(id2label)))
        return tuple(str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n))

    @property
    def max_length(self) -> int:
        """The most tokens one text may have."""
        limits = [
            getattr(self.config, "max_position_embeddings", None),
            getattr(self.config, "n_positions", None),
            getattr(self.tokenizer, "model_max_length", None),
        ]
        usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
        return min(usable) if usable else 512

    @property
    def multi_label(self) -> bool:
        """Whether the classifier's labels are independent (sigmoid probabilities each), not
        one class among them (``problem_type="multi_label_classification"``)."""
        return getattr(self.config, "problem_type", None) == "multi_label_classification"

    @property
    def vocab_size(self) -> int:
        """Rows of the output layer (a language model's vocabulary); 0 when there is none."""
        layer = self.output_layer()
        if layer is not None:
            return int(layer.weight.shape[0])
        return int(getattr(self.config, "vocab_size", 0) or 0)

    @property
    def attention_heads(self) -> int:
        """Attention heads per layer."""
        cfg = self.config
        return int(getattr(cfg, "num_attention_heads", 0) or getattr(cfg, "n_head", 0) or 1)

    def output_layer(self) -> torch.nn.Module | None:
        """A causal LM's output layer when it maps each position's hidden state to that
        position's logits on its own (a linear layer); None otherwise."""
        if self.task != "causal-lm":
            return None
        get = getattr(self.model, "get_output_embeddings", None)
        layer = get() if callable(get) else None
        return layer if isinstance(layer, torch.nn.Linear) else None

    def generate_ids(
        self, prompt_ids: list[int], n: int, sample_seed: int | None, stopping: Any = None
    ) -> list[int]:
        """A causal LM's continuation of ``prompt_ids``: ``n`` tokens at most, greedy (or
        sampled with ``sample_seed``), cut before the end-of-sequence token."""
        end = self._end_token_id()
        inputs = torch.tensor([prompt_ids], device=self.device)
        sample = sample_seed is not None
        kwargs: dict[str, Any] = {"max_new_tokens": n, "do_sample": sample}
        if sample:
            torch.manual_seed(sample_seed)
        else:  # greedy: no sampling settings from the model's generation config
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            out = self.model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                pad_token_id=self.pad_token_id,
                stopping_criteria=stopping,
                **kwargs,
                **self._generation_options(),
            )
        new = out[0, self._generated_from(len(prompt_ids)) :].tolist()
        return new[: new.index(end)] if end is not None and end in new else new

    def _end_token_id(self) -> int | None:
        """The token that ends a generated answer."""
        return getattr(self.tokenizer, "eos_token_id", None)

    def _generation_options(self) -> dict[str, Any]:
        """What ``generate`` needs besides the prompt and the decoding settings."""
        return {}

    def _generated_from(self, n_prompt: int) -> int:
        """Where the new tokens start in what ``generate`` returns (after the prompt)."""
        return n_prompt

    def layer_bytes(self, rows: int, width: int) -> int:
        """Rough memory one transformer block keeps for the backward pass, for ``rows`` texts of
        ``width`` tokens: about ten hidden-size vectors and two feed-forward-size ones a token,
        and with eager attention three attention maps per head (fused attention keeps none), in
        the model's dtype."""
        cfg = self.config
        hidden = int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "n_embd", 0) or self.embed_dim)
        inner = int(
            getattr(cfg, "intermediate_size", 0) or getattr(cfg, "n_inner", 0) or 4 * hidden
        )
        eager = getattr(cfg, "_attn_implementation", "eager") in (None, "eager")
        maps = 3 * self.attention_heads * width if eager else 2 * self.attention_heads
        size = self.word_embeddings.weight.element_size()
        return rows * width * (10 * hidden + 2 * inner + maps) * size

    def activation_bytes(self, rows: int, width: int) -> int:
        """Rough memory a forward and backward pass keeps for ``rows`` texts of ``width`` tokens:
        every block's ``layer_bytes``; with ``checkpointing`` on, each block keeps only its input
        and one block's activations live at a time (recomputed in the backward pass)."""
        cfg = self.config
        hidden = int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "n_embd", 0) or self.embed_dim)
        layers = max(1, self.n_layers)
        if self.checkpointing:
            size = self.word_embeddings.weight.element_size()
            return rows * width * layers * hidden * size + self.layer_bytes(rows, width)
        return layers * self.layer_bytes(rows, width)

    @property
    def can_checkpoint(self) -> bool:
        """Whether ``checkpointed`` can recompute this model's blocks in the backward pass."""
        return isinstance(self.layers, torch.nn.ModuleList) and len(self.layers) > 0

    @contextlib.contextmanager
    def checkpointed(self) -> Iterator[None]:
        """Within the block, each transformer block keeps only its input for the backward pass
        and recomputes the rest there (gradient checkpointing): memory for long texts, at the
        cost of one more forward pass per backward pass. The same values and gradients."""
        from torch.utils.checkpoint import checkpoint

        blocks = self.layers if isinstance(self.layers, torch.nn.ModuleList) else []
        replaced = []

        def wrap(block: Any) -> Any:
            original = block.forward

            def forward(*args: Any, **kwargs: Any) -> Any:
                if not torch.is_grad_enabled():
                    return original(*args, **kwargs)
                return checkpoint(original, *args, use_reentrant=False, **kwargs)

            return forward

        try:
            for block in blocks:
                block.forward = wrap(block)
                replaced.append(block)
            self.checkpointing = True
            yield
        finally:
            self.checkpointing = False
            for block in replaced:
                del block.forward

    def fingerprint(self) -> str:
        """A short hash of the model's configuration and weights, for caches of its outputs."""
        config: Any = getattr(self, "config", None)
        text = config.to_json_string() if hasattr(config, "to_json_string") else repr(config)
        digest = hashlib.sha256(text.encode())
        digest_weights(digest, self.model)
        return digest.hexdigest()[:16]

    @property
    def causal(self) -> bool:
        """Whether the model reads left to right only (a decoder-only language model)."""
        return bool(self.wiring.causal)

    def hidden_state_at(
        self, embeds: torch.Tensor, batch: TokenBatch, rows: torch.Tensor, layer: int
    ) -> torch.Tensor:
        """Hidden states ``(N, T, H)`` after block ``layer`` (0 = the embedding output).

        When the blocks are known, the forward pass stops right after the needed one, so
        explaining layer 1 costs one block, not all of them. Otherwise (ALBERT, unknown models,
        a decoder's last layer, which HF returns after the final norm) the whole model runs.
        """
        blocks = self.layers
        last = layer == self.n_layers
        if not isinstance(blocks, torch.nn.ModuleList) or (self.causal and last):
            out = self.forward(embeds, batch, rows, hidden_states=True)
            return out.hidden_states[layer]
        seen: dict[str, torch.Tensor] = {}
        embeds = embeds.to(self.dtype)

        def after(module: Any, args: Any, output: Any) -> None:
            seen["h"] = output[0] if isinstance(output, tuple) else output
            raise _Stop

        def before(module: Any, args: Any, kwargs: Any) -> None:
            seen["h"] = args[0] if args else kwargs["hidden_states"]
            raise _Stop

        if layer == 0:
            handle = blocks[0].register_forward_pre_hook(before, with_kwargs=True)
        else:
            handle = blocks[layer - 1].register_forward_hook(after)
        try:
            self.forward(embeds, batch, rows)
        except _Stop:
            pass
        finally:
            handle.remove()
        return seen["h"].float() if seen["h"].dtype in HALF else seen["h"]

    @contextlib.contextmanager
    def entering_blocks(self, states: torch.Tensor) -> Iterator[None]:
        """Within the block, the first transformer block reads ``states`` ``(N, T, H)`` instead
        of the embedding module's output; the hook is always removed."""
        blocks = self.layers
        if not isinstance(blocks, torch.nn.ModuleList) or len(blocks) == 0:
            raise TextlensError(
                f"textlens does not know the blocks of this {self.config.model_type} model, so "
                "it cannot perturb the embedding output: use noise_at='word-embeddings'"
            )

        def before(module: Any, args: Any, kwargs: Any) -> Any:
            if args:
                return (states.to(args[0].dtype), *args[1:]), kwargs
            given = kwargs["hidden_states"]
            return args, {**kwargs, "hidden_states": states.to(given.dtype)}

        handle = blocks[0].register_forward_pre_hook(before, with_kwargs=True, prepend=True)
        try:
            yield
        finally:
            handle.remove()

    @contextlib.contextmanager
    def altering_states(
        self, layer: int, alter: Callable[[torch.Tensor], torch.Tensor]
    ) -> Iterator[None]:
        """Within the block, the hidden states after block ``layer`` (0 = the embedding output)
        pass through ``alter`` ``(N, T, H) -> (N, T, H)`` before the rest of the model reads
        them; the hook is always removed."""
        blocks = self.layers
        if not isinstance(blocks, torch.nn.ModuleList) or len(blocks) == 0:
            raise TextlensError(
                f"textlens does not know the blocks of this {self.config.model_type} model, so "
                "it cannot alter a layer's hidden states"
            )
        if not 0 <= layer <= len(blocks):
            raise TextlensError(f"layer {layer} is not in 0..{len(blocks)}")

        def altered(h: torch.Tensor) -> torch.Tensor:  # in float32, back in the model's dtype
            return alter(h.float() if h.dtype in HALF else h).to(h.dtype)

        def before(module: Any, args: Any, kwargs: Any) -> Any:
            if args:
                return (altered(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": altered(kwargs["hidden_states"])}

        def after(module: Any, args: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (altered(output[0]), *output[1:])
            return altered(output)

        if layer == 0:
            handle = blocks[0].register_forward_pre_hook(before, with_kwargs=True)
        else:
            handle = blocks[layer - 1].register_forward_hook(after)
        try:
            yield
        finally:
            handle.remove()

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
        """Run the model from word embeddings ``(N, T, K)``.

        Args:
            embeds: Word embeddings for ``N`` rows.
            batch: The batch the rows come from (masks, token types).
            rows: For each of the ``N`` rows, its text's index in ``batch``; None = ``arange(B)``.
            hidden_states: Also return every layer's hidden states (embedding output first).
            attentions: Also return attention weights (needs eager attention; see
                ``eager_attention``).
            logits_at: Causal LMs with ``keeps_logits``: the logits at these positions only
                (sorted), ``(N, len(logits_at), V)``.
        """
        check_cancelled()
        index = rows if rows is not None else slice(None)
        kwargs: dict[str, Any] = {
            "inputs_embeds": embeds.to(self.dtype),
            "attention_mask": batch.attention_mask[index],
            "output_hidden_states": hidden_states,
            "output_attentions": attentions,
            "return_dict": True,
        }
        if self.takes_token_types and batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids[index]
        if self.task == "causal-lm":
            kwargs["use_cache"] = False
        if logits_at is not None:
            if not self.keeps_logits:
                raise TextlensError("this model computes the logits at every position")
            kwargs["logits_to_keep"] = logits_at
        return upcast(self.model(**kwargs))

    def forward_pieces(
        self,
        embeds: torch.Tensor,
        batch: TokenBatch,
        rows: torch.Tensor,
        ends: list[int],
        logits_at: torch.Tensor,
    ) -> list[Any]:
        """Run a causal LM (``runs_in_pieces``) from word embeddings ``(N, T, K)`` over the
        positions ``[0, ends[0])``, ``[ends[0], ends[1])``, ... in turn, each piece reading the
        keys and values of the earlier ones from a cache. A gradient from a piece's outputs then
        flows back through that piece and the earlier ones only, not through the positions after
        it (which a left-to-right model's earlier outputs do not depend on).

        Returns one output per piece with the logits at the positions of ``logits_at`` (sorted)
        that lie inside it, ``(N, n_inside, V)``.
        """
        from transformers import DynamicCache

        check_cancelled()
        mask = batch.attention_mask[rows]
        types = batch.token_type_ids
        types = types[rows] if self.takes_token_types and types is not None else None
        # a cache that keeps every position: one built from the config would drop keys outside
        # a sliding window that a config may name without the model using it (the masks apply
        # the windows the model does use)
        cache = DynamicCache()
        outs, start = [], 0
        for end in ends:
            inside = logits_at[(logits_at >= start) & (logits_at < end)] - start
            kwargs: dict[str, Any] = {
                "inputs_embeds": embeds[:, start:end].to(self.dtype),
                "attention_mask": mask[:, :end],
                str(self._cache_argument): cache,
                "use_cache": True,
                "logits_to_keep": inside,
                "return_dict": True,
            }
            if types is not None:
                kwargs["token_type_ids"] = types[:, start:end]
            check_cancelled()
            outs.append(upcast(self.model(**kwargs)))  # the cache grows in place
            start = end
        return outs

    @property
    def attention_in_rows(self) -> bool:
        """Whether ``attention_rows`` can read attention weights without whole maps."""
        from textlens.adapters import attention_rows

        return attention_rows.supported(self.model)

    def attention_rows(
        self,
        embeds: torch.Tensor,
        batch: TokenBatch,
        positions: torch.Tensor,
        weights: torch.Tensor,
    ) -> list[torch.Tensor] | None:
        """Each layer's attention weights (mean over heads) from query ``positions`` ``(B, Q)``,
        summed with ``weights`` ``(B, Q)``: one ``(B, T)`` tensor a layer, computed a few rows
        at a time (no ``T x T`` map is kept); None when the model cannot (``attention_in_rows``)
        or its attention calls do not match its layers."""
        from textlens.adapters import attention_rows

        if not self.attention_in_rows:
            return None
        with (
            attention_rows.reading_rows(
                self.model, positions, weights, batch.attention_mask
            ) as got,
            torch.no_grad(),
        ):
            last = torch.tensor([embeds.shape[1] - 1], device=embeds.device)
            self.forward(embeds, batch, logits_at=last if self.keeps_logits else None)
        return got if len(got) == self.n_layers else None

    @contextlib.contextmanager
    def eager_attention(self) -> Iterator[None]:
        """Switch to eager attention (which can return weights) for the duration of the block."""
        current = getattr(self.config, "_attn_implementation", None)
        if current in (None, "eager") or not hasattr(self.model, "set_attn_implementation"):
            yield
            return
        self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            self.model.set_attn_implementation(current)

    def input_vectors(self, embeds: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
        """Each token's input vector as the model adds it up from the word embeddings ``embeds``
        ``(B, T, K)``: word, position and token type (and whatever else the model adds), before
        an embedding norm, without gradients."""
        base = getattr(self.model, "base_model", self.model)
        norm = getattr(getattr(base, "embeddings", None), "LayerNorm", None)
        if not isinstance(norm, torch.nn.Module):  # no embedding norm: the embedding output
            rows = torch.arange(len(batch), device=embeds.device)
            with torch.no_grad():
                return self.hidden_state_at(embeds, batch, rows, 0)
        seen: dict[str, torch.Tensor] = {}

        def before(module: Any, args: Any) -> None:
            seen["x"] = args[0]
            raise _Stop

        handle = norm.register_forward_pre_hook(before)
        try:
            with torch.no_grad():
                self.forward(embeds, batch)
        except _Stop:
            pass
        finally:
            handle.remove()
        return seen["x"]

    def relevance_parts(self) -> RelevanceParts:
        """The modules the relevance method's rules apply to (``RelevanceParts``).

        Raises:
            TextlensError: the rules are not wired for this architecture (the message names
                the ones they are).
        """
        model_type = str(getattr(self.config, "model_type", "") or type(self.model).__name__)
        if not self.wiring.relevance:
            raise TextlensError(
                f"the relevance method has no rules for {model_type} models "
                f"({type(self.model).__name__}) yet; it has them for "
                f"{', '.join(relevance_families())}: use gradient-x-input or "
                "integrated-gradients for this model"
            )
        return relevance_parts_of(
            self.model, gated=self.wiring.gated_mlp, tanh_head=self.wiring.tanh_head
        )

    def sub_embeddings(self) -> dict[str, torch.nn.Module]:
        """The embedding tables this model has: ``word`` always, ``position`` / ``token_type``."""
        found = {"word": self.word_embeddings}
        if self.position_embeddings is not None:
            found["position"] = self.position_embeddings
        if self.token_type_embeddings is not None:
            found["token_type"] = self.token_type_embeddings
        return found

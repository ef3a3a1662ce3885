"""Relevance propagation with AttnLRP's rules: a faithful explanation in one backward pass.

Layer-wise relevance propagation (LRP) passes the explained value back through the network,
layer by layer, keeping (conserving) its total. For transformers, Achtibat et al. (AttnLRP, ICML
2024) and Ali et al. (ICML 2022) give the rules; every one of them can be written as a modified
gradient, so relevance is gradient x input through a network whose forward pass computes the same
values with some factors held constant:

- LayerNorm and RMSNorm: the identity rule; the normalising scale (1 / std, 1 / rms) is held
  constant, so the layer is linear in its input.
- Element-wise activations (GELU, SiLU, tanh) and their gates: the identity rule; ``act(x)`` is
  written ``x * (act(x) / x)`` with the ratio held constant, so relevance passes unchanged.
- Products of two inputs (query x key, attention x value, a gate x its value): the uniform rule;
  each factor gets half the relevance (``0.5 * (a * b.detach() + a.detach() * b)``).
- The attention softmax: AttnLRP's rule, ``R_in = x * (R_out - s * sum R_out)``, which is
  exactly gradient x input at the softmax's input; what it does not pass on is absorbed.
- Linear layers: the epsilon rule with epsilon 0 (written as a gradient, it divides by nothing);
  their biases absorb ``b * gradient``.

The rules apply only while a run holds ``relevance_rules``: hooks and a per-call attention
implementation, removed when it ends, so the model and every other method are unchanged. The
architecture knowledge (which modules are norms, activations, gated blocks, heads) comes from
the adapter (``relevance_parts``).

References:
    Achtibat et al., 2024, https://arxiv.org/abs/2402.05602 (AttnLRP);
    Ali et al., 2022, https://arxiv.org/abs/2202.07304 (conservative propagation)
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.lazy import torch
from textlens.methods.base import (
    Scores,
    capture,
    gradient_memory_bytes,
    has_shared_rows,
    mask_pads,
    target_and_grad,
    trim,
    width_of,
)
from textlens.methods.layer_conductance import Layers, resolve_layers
from textlens.methods.registry import register
from textlens.targets import BoundTarget

ATTENTION = "textlens-relevance"
"""The attention implementation the rules register with transformers (used only while a
relevance run holds ``relevance_rules``)."""
_local = threading.local()
_registered = threading.Lock()


def identity_rule(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``y = act(x)`` element-wise, as ``x * ratio`` with the ratio held constant: relevance
    passes unchanged (where ``x`` is 0, so is the relevance)."""
    nonzero = x != 0
    ratio = torch.where(nonzero, y / torch.where(nonzero, x, torch.ones_like(x)), 0.0 * x)
    return x * ratio.detach()


def uniform_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a * b`` whose relevance goes half to each factor (the uniform rule)."""
    return 0.5 * (a * b.detach() + a.detach() * b)


def uniform_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` whose relevance goes half to each factor (the uniform rule)."""
    return 0.5 * (torch.matmul(a, b.detach()) + torch.matmul(a.detach(), b))


class Audit:
    """Relevance the rules absorb, per row, collected during one backward pass.

    Each point is a tensor and a weight: when the tensor's gradient ``g`` is computed, ``sign *
    sum(weight * g)`` is added to its row's total (a bias's ``b * g``; at the softmax the
    relevance entering it minus the relevance leaving it).
    """

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None

    def add(
        self,
        tensor: torch.Tensor,
        weight: torch.Tensor | Callable[[], torch.Tensor],
        sign: float = 1.0,
    ) -> None:
        """``weight``: a tensor, or a function that makes it when the gradient arrives (so that
        nothing as large as an attention map is kept for it until then)."""
        if not tensor.requires_grad:
            return
        if isinstance(weight, torch.Tensor):
            weight = weight.detach()

        def hook(grad: torch.Tensor) -> None:
            w = weight if isinstance(weight, torch.Tensor) else weight()
            part = (grad * w).reshape(grad.shape[0], -1).sum(1) * sign
            self.total = part if self.total is None else self.total + part

        tensor.register_hook(hook)


def _audit() -> Audit | None:
    return getattr(_local, "audit", None)


def _attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention with AttnLRP's rules: the uniform rule on query x key and on attention
    x value, the softmax as it is (its rule is gradient x input)."""
    groups = int(getattr(module, "num_key_value_groups", 1) or 1)
    if groups > 1:  # grouped keys and values: one copy per query head
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = uniform_matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        mask = attention_mask[..., : key.shape[-2]]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask
    low = scores.dtype in (torch.float16, torch.bfloat16)
    probs = torch.softmax(scores.float() if low else scores, dim=-1).to(value.dtype)
    audit = _audit()
    if audit is not None:  # the softmax absorbs what enters it and does not leave it
        audit.add(probs, probs)
        # the gradient entering the scores sums to zero over each row, so its product with the
        # scores equals its product with log(probs): made from the kept probabilities when the
        # gradient arrives, rather than a second map kept per layer
        kept = probs.detach()

        def logs() -> torch.Tensor:
            return (kept.float() if low else kept).log().nan_to_num(0.0, 0.0, 0.0)

        audit.add(scores, logs, -1.0)
    out = uniform_matmul(probs, value)
    return out.transpose(1, 2).contiguous(), probs


def rule_maps_bytes(model: ModelAdapter, batch: TokenBatch) -> int:
    """What the rules' eager attention keeps beyond a fused one: each distinct input's
    attention weights, ``T x T`` maps per head and layer, and one layer's gradients of them at
    a time; none more when the model already runs eager attention (its layers count them)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) in (None, "eager"):
        return 0
    n, width = batch.input_ids.shape
    texts = len(torch.unique(batch.input_ids, dim=0)) if n > 1 and model.causal else n
    heads = int(getattr(model, "attention_heads", 1))
    # measured on SmolLM2: about one and a half maps a layer stay in the graph, and a few
    # more live while one layer's gradients are computed
    layers = 6 if getattr(model, "checkpointing", False) else 3 * model.n_layers // 2 + 4
    size = torch.finfo(getattr(model, "dtype", torch.float32)).bits // 8
    return texts * heads * width * width * size * layers


def _register_attention() -> None:
    """Add the rules' attention to transformers' registries (a new name: nothing else uses it)."""
    with _registered:
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
        from transformers.modeling_utils import AttentionInterface

        if ATTENTION not in AttentionInterface._global_mapping:
            AttentionInterface.register(ATTENTION, _attention)
            AttentionMaskInterface.register(ATTENTION, eager_mask)


def _norm(kind: str) -> Any:
    """A forward hook that recomputes a norm with its scale held constant."""

    def hook(module: Any, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        x = args[0]
        if kind == "layer":
            centred = x - x.mean(-1, keepdim=True)
            scale = torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + module.eps)
            out = centred * scale.detach()
            if module.weight is not None:
                out = out * module.weight
            if module.bias is not None:
                out = out + module.bias
                audit = _audit()
                if audit is not None:
                    audit.add(out, module.bias)
            return out.to(output.dtype)
        eps = getattr(module, "variance_epsilon", getattr(module, "eps", 1e-6))
        h = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        scale = torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
        return module.weight * (h * scale.detach()).to(x.dtype)

    return hook


def _activation(module: Any, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    return identity_rule(args[0], output)


def _bias(module: Any, args: tuple[Any, ...], output: torch.Tensor) -> None:
    audit = _audit()
    if audit is not None:
        audit.add(output, module.bias)


def _gated(module: Any) -> Any:
    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        gate = module.act_fn(module.gate_proj(x))  # the activation's own hook: identity rule
        return module.down_proj(uniform_product(gate, module.up_proj(x)))

    return forward


def _tanh_head(module: Any) -> Any:
    def forward(features: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        x = module.dense(module.dropout(features[:, 0, :]))
        return module.out_proj(module.dropout(identity_rule(x, torch.tanh(x))))

    return forward


@contextlib.contextmanager
def relevance_rules(model: ModelAdapter, audit: Audit | None = None) -> Iterator[None]:
    """Within the block, the model's forward passes follow the rules (the values they compute
    are the same); with ``audit``, the relevance the rules absorb is collected there. Every hook,
    replaced forward and attention setting is undone when the block ends."""
    parts = model.relevance_parts()
    _register_attention()
    handles = []
    replaced = []
    settings = [(config, config._attn_implementation) for config in parts.configs]
    before = _audit()
    try:
        for module, kind in parts.norms:
            handles.append(module.register_forward_hook(_norm(kind)))
        for module in parts.activations:
            handles.append(module.register_forward_hook(_activation))
        for module in parts.biased:
            handles.append(module.register_forward_hook(_bias))
        for module in parts.gated:
            module.forward = _gated(module)
            replaced.append(module)
        for module in parts.tanh_heads:
            module.forward = _tanh_head(module)
            replaced.append(module)
        for config, _ in settings:
            config._attn_implementation = ATTENTION
        _local.audit = audit
        yield
    finally:
        _local.audit = before
        for config, implementation in settings:
            config._attn_implementation = implementation
        for module in replaced:
            del module.forward
        for handle in handles:
            handle.remove()


@dataclass(frozen=True)
class _Propagated:
    grad: torch.Tensor  # (B, T, K) at the word embeddings
    layers: dict[int, torch.Tensor]  # relevance per token at hidden states ``(B, T)``
    absorbed: torch.Tensor  # (B,) by the rules (biases, softmax); NaN where not measured
    by_target: torch.Tensor  # (B,) by the target's own function of the logits (NaN: unknown)
    value: torch.Tensor  # (B,) the explained value, as the rules' forward pass computed it


def propagate(
    model: ModelAdapter,
    batch: TokenBatch,
    target: BoundTarget,
    embeds: torch.Tensor,
    layers: tuple[int, ...] = (),
) -> _Propagated:
    """One forward and one backward pass under the rules: the gradient at the word embeddings,
    the relevance at the chosen hidden states, and the relevance absorbed per text."""
    n = len(batch)
    rows = torch.arange(n, device=batch.device)
    if not layers and has_shared_rows(batch, target):  # a generated answer's rows share passes
        with relevance_rules(model):
            grad = target_and_grad(model, batch, target, embeds, rows)[1]
        nan = torch.full((n,), float("nan"), dtype=grad.dtype, device=grad.device)
        return _Propagated(grad, {}, nan, nan, nan)
    width = width_of(batch, rows)
    audit = Audit()
    with relevance_rules(model, audit), torch.enable_grad():
        leaf = embeds[:, :width].detach().requires_grad_(True)
        out = model.forward(
            leaf, trim(batch, width), rows, hidden_states=bool(layers) or target.needs_hidden_states
        )
        values = target.select(out, rows)
        logits = getattr(out, "logits", None)
        top = isinstance(logits, torch.Tensor) and logits.requires_grad
        wanted = [leaf] + [out.hidden_states[v] for v in layers] + ([logits] if top else [])
        grads = torch.autograd.grad(values.sum(), wanted, allow_unused=True)
    grad = torch.nn.functional.pad(grads[0], (0, 0, 0, embeds.shape[1] - width))
    found = {}
    for v, g, h in zip(layers, grads[1:], [out.hidden_states[v] for v in layers], strict=False):
        r = (h * g).sum(-1).to(embeds.dtype) if g is not None else torch.zeros(h.shape[:2])
        found[v] = torch.nn.functional.pad(r.detach(), (0, embeds.shape[1] - width))
    absorbed = audit.total if audit.total is not None else torch.zeros_like(values)
    by_target = torch.full_like(values, float("nan"))  # the target does not read the logits
    if top and grads[-1] is not None:  # what the target's function of the logits keeps
        by_target = values - (logits * grads[-1]).reshape(n, -1).sum(1)
    return _Propagated(grad, found, absorbed.detach(), by_target.detach(), values.detach())


def _token_relevance(
    model: ModelAdapter, batch: TokenBatch, embeds: torch.Tensor, grad: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Each token's relevance split by what builds its input vector: ``word``, then
    ``position`` / ``token_type`` where the model adds them, and ``other`` for anything else it
    adds (the gradient of a sum is each summand's)."""
    total = model.input_vectors(embeds, batch).to(grad.dtype)
    width = total.shape[1]
    grad, word = grad[:, :width], embeds[:, :width].to(grad.dtype)
    parts = {"word": (grad * word).sum(-1)}
    rest = total - word
    for kind, module in model.sub_embeddings().items():
        if kind == "word":
            continue
        seen: dict[str, Any] = {}
        with torch.no_grad(), capture(module, seen):
            model.forward(embeds, batch)
        added = seen["output"].detach().to(grad.dtype)
        added = added.expand(len(batch), *added.shape[1:])[:, :width]
        parts[kind] = (grad * added).sum(-1)
        rest = rest - added
    other = (grad * rest).sum(-1)
    if bool((other.abs() > 1e-6 * (parts["word"].abs().max() + 1e-30)).any()):
        parts["other"] = other
    pad = embeds.shape[1] - width
    return {k: mask_pads(torch.nn.functional.pad(v, (0, pad)), batch) for k, v in parts.items()}


class ConservationWarning(UserWarning):
    """The relevance does not add up to the target: the model computes something the rules
    do not reach (an activation called as a function, say)."""


CONSERVATION_TOLERANCE = 1e-3
"""Largest share of the relevance (|target| + sum of |scores|) left unaccounted for without a
warning (float32 rounding stays far below it)."""
HALF_TOLERANCE = 5e-2
"""The same for a model in bfloat16 or float16, whose every layer rounds to 8 or 11 bits."""


def check_conservation(scores: torch.Tensor, found: _Propagated, dtype: Any = None) -> None:
    """Warn when scores, absorbed relevance and the target's own share miss the target."""
    accounted = scores.sum(-1) + found.absorbed + found.by_target
    missing = (found.value - accounted).abs()
    scale = found.value.abs() + scores.abs().sum(-1)
    half = dtype in (torch.float16, torch.bfloat16)
    tolerance = HALF_TOLERANCE if half else CONSERVATION_TOLERANCE
    bad = torch.isfinite(missing) & (missing > tolerance * scale)
    if bool(bad.any()):
        i = int(torch.nonzero(bad).flatten()[0])
        warnings.warn(
            f"relevance is not conserved for {int(bad.sum())} text(s): of a target of "
            f"{float(found.value[i]):.4g}, {float(found.value[i] - accounted[i]):.3g} is not "
            "accounted for; the model computes something the rules do not reach (an activation "
            "called as a function, an unsupported layer), so the scores are not its relevance",
            ConservationWarning,
            stacklevel=4,
        )


@register
@dataclass(frozen=True)
class Relevance:
    """Relevance propagation with AttnLRP's rules: each token's share of the target, in one
    forward and one backward pass.

    Rules: identity through LayerNorm / RMSNorm (their scale held constant) and element-wise
    activations, the uniform rule on products of two inputs (query x key, attention x value,
    gates), AttnLRP's softmax rule, epsilon rule (epsilon 0) on linear layers. A token's score is
    the relevance of its input vector (word, plus position and token type where the model adds
    them; ``extras`` holds each part). The scores, ``extras["absorbed"]`` (what biases and the
    attention softmax keep) and ``extras["absorbed_by_target"]`` (what the target's own function
    of the logits keeps, e.g. a log-probability's normalisation; 0 for a logit) add up to the
    target. Wired for BERT, RoBERTa, DistilBERT, GPT-2, Llama, Mistral and Qwen2.

    References:
        Achtibat et al., 2024, https://arxiv.org/abs/2402.05602 (AttnLRP);
        Ali et al., 2022, https://arxiv.org/abs/2202.07304
    """

    name: ClassVar[str] = "relevance"
    backward: ClassVar[bool] = True
    encoder_decoder: ClassVar[bool] = False  # its rules know decoder-only stacks
    reads_positions: ClassVar[bool] = True
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = False
    provides: ClassVar[dict[str, str]] = {"parts": ""}
    diagnostics: ClassVar[tuple[tuple[str, str], ...]] = (
        ("absorbed", "relevance absorbed by biases and attention softmax"),
        ("absorbed_by_target", "target less the relevance of its logits"),
    )

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (one forward and one backward pass each)."""
        return len(batch)

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        return gradient_memory_bytes(model, batch) + rule_maps_bytes(model, batch)

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        embeds = model.embed(batch).detach()
        found = propagate(model, batch, target, embeds)
        parts = _token_relevance(model, batch, embeds, found.grad)
        total = torch.stack(list(parts.values())).sum(0)
        check_conservation(total, found, getattr(model, "dtype", None))
        return Scores(
            total,
            extras={**parts, "absorbed": found.absorbed, "absorbed_by_target": found.by_target},
            extra_axes={k: ("token",) for k in parts},
            parts=tuple(parts),
        )


@register
@dataclass(frozen=True)
class LayerRelevance:
    """Relevance propagation with AttnLRP's rules, at every chosen layer: the relevance entering
    each layer's hidden states, per token, from the same single backward pass.

    The rules are those of ``relevance``. Layer 0 is the embedding output; the input tokens'
    relevance (``relevance``'s scores) is ``extras["input"]``.

    Args:
        layers: Hidden-state numbers 0..n_layers; None = every one.

    References:
        Achtibat et al., 2024, https://arxiv.org/abs/2402.05602 (AttnLRP)
    """

    name: ClassVar[str] = "layer-relevance"
    backward: ClassVar[bool] = True
    encoder_decoder: ClassVar[bool] = False  # its rules know decoder-only stacks
    signed: ClassVar[bool] = True
    layered: ClassVar[bool] = True
    layer_totals: ClassVar[str] = "the target, less what the rules absorb above the layer"
    layers: Layers = None

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (one forward and one backward pass each)."""
        return len(batch)

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        return gradient_memory_bytes(model, batch) + rule_maps_bytes(model, batch)

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        chosen = resolve_layers(self.layers, model.n_layers, tuple(range(model.n_layers + 1)))
        embeds = model.embed(batch).detach()
        found = propagate(model, batch, target, embeds, chosen)
        parts = _token_relevance(model, batch, embeds, found.grad)
        values = torch.stack([mask_pads(found.layers[v], batch) for v in chosen], dim=1)
        return Scores(
            values,
            axes=("batch", "layer", "token"),
            layers=chosen,
            extras={
                "input": torch.stack(list(parts.values())).sum(0),
                "absorbed": found.absorbed,
                "absorbed_by_target": found.by_target,
            },
            extra_axes={"input": ("token",)},
        )

"""SmoothGrad: average another method's scores over noisy copies of the input embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textlens.adapters.base import ModelAdapter
from textlens.batch import TokenBatch
from textlens.errors import TextlensError
from textlens.lazy import torch
from textlens.methods.base import EmbeddingMethod, Scores
from textlens.methods.registry import register
from textlens.methods.settings import setting
from textlens.targets import BoundTarget


def embedding_noise(
    embeds: torch.Tensor, batch: TokenBatch, n_samples: int, noise_std: float, seed: int
) -> torch.Tensor:
    """Gaussian noise ``(n_samples, B, T, K)`` on the real tokens, zero on padding.

    Each text gets its own generator seeded with ``seed`` and noise of standard deviation
    ``noise_std * (max - min)`` of its own embedding values, so a text gets the same noise
    whether it is explained alone or in a batch.
    """
    noise = torch.zeros((n_samples, *embeds.shape), dtype=embeds.dtype, device=embeds.device)
    for b, length in enumerate(batch.lengths.tolist()):
        own = embeds[b, :length]
        scale = noise_std * float(own.max() - own.min())
        gen = torch.Generator(device=embeds.device).manual_seed(seed)
        draw = torch.randn(
            (n_samples, length, embeds.shape[-1]), generator=gen, device=embeds.device
        )
        noise[:, b, :length] = draw.to(embeds.dtype) * scale
    return noise


def wrappable_methods() -> list[str]:
    """Registered methods that can start from given embeddings (``EmbeddingMethod``)."""
    from textlens.methods.registry import METHODS

    return sorted(n for n, c in METHODS.items() if issubclass(c, EmbeddingMethod))


@register
@dataclass(frozen=True)
class SmoothGrad:
    """SmoothGrad: another method's scores averaged over noisy copies of the embeddings.

    Noise follows AllenNLP Interpret: Gaussian, with standard deviation ``noise_std`` times the
    range (max - min) of the text's embedding values, 10 samples by default. The wrapped
    method's scores (not its gradients) are averaged, as in Smilkov et al. and Captum's
    NoiseTunnel.

    Args:
        base: Registry name of the wrapped method: any that can start from given embeddings
            (``EmbeddingMethod``: gradient, gradient-x-input, integrated-gradients...).
        n_samples: Noisy copies per text.
        noise_std: Noise scale relative to the embedding value range.
        seed: Seeds the noise; the same seed gives the same result.

    References:
        Smilkov et al., 2017, https://arxiv.org/abs/1706.03825
    """

    name: ClassVar[str] = "smoothgrad"
    backward: ClassVar[bool] = True
    layered: ClassVar[bool] = False
    cost_setting: ClassVar[str] = "n_samples"
    test_settings: ClassVar[dict[str, Any]] = {"n_samples": 3, "noise_std": 0.05}
    base: str = "gradient"
    n_samples: int = setting(10, low=1, cap=64)
    noise_std: float = setting(0.01, low=0)
    seed: int = 0

    def __post_init__(self) -> None:
        from textlens.methods.registry import METHODS

        wrappable = wrappable_methods()
        if self.base not in wrappable or METHODS[self.base] is type(self):
            raise TextlensError(
                f"smoothgrad cannot wrap {self.base!r}; use one of: {', '.join(wrappable)}"
            )

    @property
    def signed(self) -> bool:
        from textlens.methods.registry import METHODS

        return bool(getattr(METHODS[self.base], "signed", True))

    def memory_bytes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        from textlens.methods.registry import get_method

        n, width = batch.input_ids.shape
        noise = self.n_samples * n * width * model.embed_dim * 4
        base = getattr(get_method(self.base), "memory_bytes", None)
        return noise + (base(model, batch) if base else model.activation_bytes(n, width))

    def passes(self, model: ModelAdapter, batch: TokenBatch) -> int:
        """Rows the model runs for ``batch`` (gradient methods: each with a backward pass)."""
        return self.n_samples * len(batch)

    def attribute(self, model: ModelAdapter, batch: TokenBatch, target: BoundTarget) -> Scores:
        from textlens.methods.registry import get_method

        base = get_method(self.base)
        assert isinstance(base, EmbeddingMethod)
        embeds = model.embed(batch).detach()
        noise = embedding_noise(embeds, batch, self.n_samples, self.noise_std, self.seed)
        total: torch.Tensor | None = None
        for sample in noise:
            scores = base.attribute_at(model, batch, target, embeds + sample)
            total = scores.values if total is None else total + scores.values
        assert total is not None
        return Scores(total / self.n_samples)

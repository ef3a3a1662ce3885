"""Noise streams: one seeded generator per (text, group), so a text's noise does not depend on
its batch companions, the padded width or the other groups."""

from __future__ import annotations

from collections.abc import Sequence

from textlens.lazy import torch


def stream(seed: int, key: int, device: torch.device) -> torch.Generator:
    """The generator of one (text, group): seeded by the seed and the group's key only."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + key)


class Noise:
    """One generator per (text, group), so a text's noise for a layer is the same whether it is
    explained alone or in a batch, and with one layer or all of them."""

    def __init__(self, lengths: Sequence[int], keys: Sequence[int], dim: int, seed: int, device):
        self.lengths = list(lengths)
        self.dim = dim
        self.device = device
        self.gens = [[stream(seed, key, device) for key in keys] for _ in lengths]

    def draw(
        self, n_samples: int, width: int, dtype: torch.dtype, active: torch.Tensor
    ) -> torch.Tensor:
        """``(B, G, n_samples, T, K)`` standard normal on real tokens of active (text, group)
        pairs; zero elsewhere. Inactive pairs draw nothing, so their streams do not move."""
        shape = (len(self.lengths), len(self.gens[0]), n_samples, width, self.dim)
        out = torch.zeros(shape, device=self.device, dtype=dtype)
        for b, g in active.nonzero().tolist():
            n = self.lengths[b]
            draw = torch.randn(
                (n_samples, n, self.dim), generator=self.gens[b][g], device=self.device
            )
            out[b, g, :, :n] = draw.to(dtype)
        return out

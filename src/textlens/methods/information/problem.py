"""The loss of Guan et al.'s information-based explanation, batched, and its start.

See ``docs/information.md`` for the method: for word embeddings ``x`` and a function Phi, learn
one noise scale sigma_i per word that Phi tolerates. ``Problem`` holds the loss of every
(text, group) pair ("groups" are the Phi explained together, e.g. layers); the solvers
(``fixed_point``, ``adam``) find its minimum; ``solve.optimize`` runs the chosen one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from textlens.errors import TextlensError
from textlens.lazy import torch
from textlens.methods.information.noise import Noise, stream

LOG_2PIE = math.log(2 * math.pi * math.e)
FLOOR_RELATIVE = 1e-3
"""Regularisation floor: r_d is at least this fraction of the median r over units."""
FLOOR_ABSOLUTE = 1e-8
LOG_SIGMA_MIN, LOG_SIGMA_MAX = math.log(1e-8), math.log(1e4)
MAX_SIGMA = 10.0
"""The default largest sigma of a token, as a multiple of its own input's RMS value per
dimension: noise with 100 times the power of the token's vector drowns it (its information is
lost to Phi). Without a bound the loss has no minimum where Phi saturates (a classifier's
logits): the data term stops growing while ``-rate * mean log sigma`` keeps falling."""
SATURATED = 0.01
"""A token whose log sigma is within this of its bound is reported as saturated."""
MIN_ITERATIONS = 6
"""The fixed-point solver runs at least this many iterations."""
WINDOW = 0.75
"""The fixed-point solver averages its estimates over this last fraction of its iterations."""
SE_FLOOR = 0.005
"""The fixed-point solver also stops once the RMS standard error of log sigma is below this
(tokens whose order cannot be told apart need not hold it up)."""
RANK_DRAWS = 32
"""Draws of the fixed-point solver's ranking test."""
DEFAULT_TOL = {"values": 0.004, "ranking": 0.03, "adam": 0.05}
"""Default ``tol`` by stopping rule: the fixed-point solver's ``ranking`` (1 - the expected
Spearman correlation of the ranking with itself moved by its standard errors) and ``values``
(the RMS standard error of log sigma, 0.004: sigma within about 0.8% at 95%), and Adam's (the RMS
change of log sigma between two 10-step windows)."""
LOSS_SAMPLES = 16
"""Noise samples behind the loss reported at the returned sigma."""
LOSS_STREAM = 104729
"""Offset of the seed of that loss's own noise streams (apart from the solver's and the
closed-form start's)."""

Phi = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
"""``phi(x_rows (N, T, K), rows (N,)) -> (N, ...)``: the function explained, for rows of texts."""


@dataclass(frozen=True)
class Group:
    """One Phi to explain (e.g. one layer's hidden states) with its regularisation.

    Attributes:
        phi: The function, on rows of (possibly noisy) embeddings.
        scale: ``r``, broadcast against Phi's output (usually one value per output unit).
        out_mask: ``out_mask(rows) -> bool`` tensor marking the output elements that count
            (e.g. real tokens of hidden states); None = all elements.
    """

    phi: Phi
    scale: torch.Tensor
    out_mask: Callable[[torch.Tensor], torch.Tensor] | None = None


@dataclass(frozen=True)
class Settings:
    """Optimiser settings (see ``InformationLoss`` for their meaning)."""

    rate: float = 0.1
    n_samples: int = 4
    solver: Literal["fixed-point", "adam"] = "fixed-point"
    precision: Literal["values", "ranking"] = "ranking"
    lr: float = 0.03
    max_steps: int = 300
    min_steps: int = 20
    window: int = 10
    tol: float | None = None
    max_step: float = 0.5
    init: Literal["closed-form", "constant"] = "closed-form"
    n_probes: int = 4
    parameterization: Literal["log", "bounded"] = "log"
    scale: float = 0.5
    keep_best: bool = False
    average_last: bool = True
    betas: tuple[float, float] = (0.9, 0.95)
    polish: float = 1 / 3
    max_sigma: float = MAX_SIGMA
    seed: int = 0

    def __post_init__(self) -> None:
        if self.solver not in ("fixed-point", "adam"):
            raise TextlensError(f"unknown solver {self.solver!r}; choose fixed-point or adam")
        if self.precision not in ("values", "ranking"):
            raise TextlensError(f"unknown precision {self.precision!r}; choose values or ranking")
        if self.solver == "fixed-point" and self.parameterization == "bounded":
            raise TextlensError("the bounded parameterization needs solver='adam'")
        if not self.max_sigma > 0:
            raise TextlensError(f"max_sigma={self.max_sigma} is not valid: give a number above 0")

    @property
    def tolerance(self) -> float:
        """``tol``, or the solver's default when it is None."""
        if self.tol is not None:
            return self.tol
        return DEFAULT_TOL["adam" if self.solver == "adam" else self.precision]


@dataclass(frozen=True)
class Result:
    """Per (text, group) outputs; token axes are padded like the input.

    Attributes:
        sigma: ``(B, G, T)`` noise scales (NaN on padding).
        information: ``(B, G, T)`` H_i in nats (NaN on padding).
        loss: ``(B, G)`` the loss at the returned sigma, the mean over ``LOSS_SAMPLES`` noise
            samples of its own seeded stream (so two answers' losses compare).
        steps: ``(B, G)`` optimiser steps each (text, group) took.
        start_loss: ``(B, G)`` loss estimate at the starting point.
        curve: ``(n_steps, B, G)`` the loss at every step (single-step estimates).
        loss_se: ``(B, G)`` the standard error of ``loss`` (sample std / sqrt(LOSS_SAMPLES)).
        log_sigma_se: ``(B, G, T)`` the standard error of each log sigma (fixed-point solver;
            inf for a token at the largest sigma, NaN on padding), or None.
        saturated: ``(B, G, T)`` True where a token's sigma reached its bound (Phi keeps none
            of its information) and the loss confirmed it there, or None.
        settled: ``(B, G)`` False where the solver stopped at ``max_steps`` without settling,
            or None.
    """

    sigma: torch.Tensor
    information: torch.Tensor
    loss: torch.Tensor
    steps: torch.Tensor
    start_loss: torch.Tensor
    curve: torch.Tensor
    start: list[str] = field(default_factory=list)
    loss_se: torch.Tensor | None = None
    log_sigma_se: torch.Tensor | None = None
    saturated: torch.Tensor | None = None
    settled: torch.Tensor | None = None


def log_upper_bound(x: torch.Tensor, real: torch.Tensor, settings: Settings) -> torch.Tensor:
    """Each token's largest log sigma ``(B, T)``: ``max_sigma`` times the RMS value of its own
    input vector (the reference's bounded form: its ``scale``); 0 on padding."""
    if settings.parameterization == "bounded":
        upper = torch.full(real.shape, math.log(settings.scale), device=x.device, dtype=x.dtype)
    else:
        rms = x.detach().pow(2).mean(-1).sqrt().clamp_min(1e-30)
        upper = torch.log(settings.max_sigma * rms).clamp(LOG_SIGMA_MIN + 1.0, LOG_SIGMA_MAX)
    return upper.masked_fill(~real.bool(), 0.0)


def log_odds(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``log p_c / (1 - p_c)`` of class ``classes[n]`` for each row of ``logits (N, C)``: the
    class's logit minus the log-sum-exp of the others'. Unlike a probability it does not flatten
    out as the prediction grows confident."""
    own = logits.gather(1, classes.unsqueeze(1)).squeeze(1)
    others = logits.scatter(1, classes.unsqueeze(1), float("-inf"))
    return own - torch.logsumexp(others, dim=1)


def every_log_odds(logits: torch.Tensor) -> torch.Tensor:
    """``log_odds`` of every class, ``(N, C)``: log p - log(1 - p). For a vocabulary, all at
    once: only a row's most likely token can have p > 1/2; its 1 - p is summed from the other
    tokens, so that it stays exact as p nears 1."""
    n, classes = logits.shape
    if classes <= 64:  # a classifier: each class exactly as ``log_odds`` (two are antisymmetric)
        every = torch.arange(classes, device=logits.device).expand(n, -1)
        return torch.stack([log_odds(logits, every[:, c]) for c in range(classes)], dim=1)
    logp = logits.double().log_softmax(-1)  # float64: p and 1 - p both exact to float32
    rest = torch.log1p(-logp.exp().clamp(max=0.5))
    top = logp.argmax(-1, keepdim=True)
    others = torch.logsumexp(logp.scatter(1, top, float("-inf")), dim=1, keepdim=True)
    return (logp - rest.scatter(1, top, others)).float()


def head_logits(out: Any, batch: Any, rows: torch.Tensor | None = None) -> torch.Tensor:
    """The logits a head Phi reads, ``(N, C)``: a classifier's, or a causal LM's at each text's
    last real token (the next-token distribution)."""
    logits = getattr(out, "logits", None)
    if logits is None:
        raise TextlensError(
            "phi='logits' and phi='log-odds' read the model's logits, and this model has none "
            "(a bare encoder): use phi='hidden' or phi='cls'"
        )
    if logits.dim() == 3:
        last = batch.lengths - 1 if rows is None else (batch.lengths - 1)[rows]
        logits = logits[torch.arange(len(logits), device=logits.device), last]
    return logits


def regularization_scale(outputs: torch.Tensor, dims: int = 1, check: bool = True) -> torch.Tensor:
    """Per-unit population std of outputs ``(n, *units)`` over the first ``dims`` axes, floored.

    Units that hardly vary (at MiniLM's last layer some vary by 1e-33) would make the loss blow
    up; each r is raised to at least ``FLOOR_RELATIVE`` times the median r (and 1e-8).
    """
    flat = outputs.reshape(-1, *outputs.shape[dims:]).double()
    if flat.shape[0] < 2:
        raise TextlensError(
            f"a regularisation needs Phi on at least 2 inputs (got {flat.shape[0]}); pass more"
        )
    std = flat.std(dim=0, unbiased=False)
    if not torch.isfinite(std).all():
        raise TextlensError("Phi returned NaN or infinite values on the regularisation corpus")
    if check:
        check_scale(std)
    floor = max(float(std.median()) * FLOOR_RELATIVE, FLOOR_ABSOLUTE)
    return std.clamp_min(floor).to(outputs.dtype)


def check_scale(std: torch.Tensor) -> None:
    """Refuse a Phi that does not vary over the corpus (nothing could be explained)."""
    if float(std.max()) <= FLOOR_ABSOLUTE:
        raise TextlensError(
            "Phi is constant over the regularisation corpus: there is nothing to explain"
        )


def group_loss(
    group: Group,
    x: torch.Tensor,
    clean: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    real: torch.Tensor,
    rate: float,
    texts: torch.Tensor,
    per_sample: bool = False,
) -> torch.Tensor:
    """Loss of one group for the given texts ``(n,)``; ``sigma (n, T)``, ``noise (n, S, T, K)``.

    ``(n,)``, the mean over the samples; ``(n, S)``, one value per sample, with ``per_sample``.
    """
    n, samples, width, _ = noise.shape
    rows = texts.repeat_interleave(samples)
    noisy = x[rows] + (sigma.unsqueeze(1).unsqueeze(-1) * noise).reshape(n * samples, width, -1)
    out = group.phi(noisy, rows)
    diff = ((out - clean[rows]) / group.scale) ** 2
    if group.out_mask is not None:
        mask = group.out_mask(rows).to(diff.dtype)
        while mask.dim() < diff.dim():
            mask = mask.unsqueeze(-1)
        mask = mask.expand_as(diff).reshape(n * samples, -1)
        data = (diff.reshape(n * samples, -1) * mask).sum(1) / mask.sum(1)
    else:
        data = diff.reshape(n * samples, -1).mean(1)
    data = data.view(n, samples)
    own = real[texts]
    reg = torch.log(sigma).masked_fill(~own, 0.0).sum(1) / own.sum(1)
    if per_sample:
        return data - rate * reg.unsqueeze(1)
    return data.mean(1) - rate * reg


def closed_form(
    groups: Sequence[Group],
    x: torch.Tensor,
    real: torch.Tensor,
    settings: Settings,
    keys: Sequence[int],
    upper: torch.Tensor | None = None,
) -> torch.Tensor:
    """First-order start: sigma_i^2 = rate * M / (2 S a_i), a_i from random VJPs. ``(B, G, T)``;
    ``upper`` ``(B, T)``: each token's largest log sigma (default: its bound from ``x``)."""
    n, width, _ = x.shape
    k = settings.n_probes
    rows = torch.arange(n, device=x.device).repeat_interleave(k)
    log_sigma = torch.zeros((n, len(groups), width), device=x.device, dtype=x.dtype)
    for g, group in enumerate(groups):
        gens = [stream(settings.seed + 7919, keys[g], x.device) for _ in range(n)]
        with torch.enable_grad():
            leaf = x[rows].detach().requires_grad_(True)
            out = group.phi(leaf, rows)
            probes = _signs(gens, k, out.shape[1:], real if group.out_mask is not None else None)
            probes = probes.to(out.dtype)
            if group.out_mask is not None:
                mask = group.out_mask(rows).to(out.dtype)
                while mask.dim() < out.dim():
                    mask = mask.unsqueeze(-1)
                probes = probes * mask.expand_as(out)
                m = mask.expand_as(out).reshape(n * k, -1).sum(1).view(n, k)[:, 0]
            else:
                m = torch.full((n,), out[0].numel(), device=x.device, dtype=out.dtype)
            (grad,) = torch.autograd.grad((out * probes / group.scale).sum(), leaf)
        a = grad.pow(2).sum(-1).view(n, k, width).mean(1)  # (B, T)
        s = real.sum(1, keepdim=True).to(x.dtype)
        sigma2 = settings.rate * m.unsqueeze(1) / (2 * s * a.clamp_min(1e-30))
        log_sigma[:, g] = 0.5 * torch.log(sigma2)
    if upper is None:
        upper = log_upper_bound(x, real, settings)
    log_sigma = torch.minimum(log_sigma.clamp_min(LOG_SIGMA_MIN), upper.unsqueeze(1))
    return log_sigma.masked_fill(~real.unsqueeze(1), 0.0)


def _signs(
    gens: Sequence[torch.Generator],
    k: int,
    shape: Sequence[int],
    real: torch.Tensor | None,
) -> torch.Tensor:
    """Random +-1 probes ``(B * k, *shape)``, one generator per text. With ``real`` the first
    axis of ``shape`` is the token axis: each text draws for its real tokens only (0 elsewhere),
    so its probes do not depend on the padded width."""
    parts = []
    for b, gen in enumerate(gens):
        if real is None:
            parts.append(torch.randint(0, 2, (k, *shape), generator=gen, device=gen.device) * 2 - 1)
            continue
        keep = real[b, : shape[0]]
        draw = torch.randint(
            0, 2, (k, int(keep.sum()), *shape[1:]), generator=gen, device=gen.device
        )
        full = torch.zeros((k, *shape), dtype=draw.dtype, device=draw.device)
        full[:, keep] = draw * 2 - 1
        parts.append(full)
    return torch.cat(parts)


def make_result(
    log_sigma: torch.Tensor,
    real_g: torch.Tensor,
    dim: int,
    final_loss: torch.Tensor,
    steps: torch.Tensor,
    start_loss: torch.Tensor | None,
    curve: list[torch.Tensor],
    chosen: list[str],
) -> Result:
    n, n_groups, _ = real_g.shape
    sigma = log_sigma.exp().masked_fill(~real_g, math.nan)
    information = dim * log_sigma + 0.5 * dim * LOG_2PIE
    return Result(
        sigma=sigma,
        information=information.masked_fill(~real_g, math.nan),
        loss=final_loss,
        steps=steps,
        start_loss=start_loss if start_loss is not None else final_loss,
        curve=torch.stack(curve) if curve else torch.zeros((0, n, n_groups)),
        start=chosen,
    )


class Problem:
    """The loss of every (text, group) pair of a batch, its parameterisation and its start.

    Args:
        groups: The Phi to explain, each with its regularisation.
        x: Word embeddings ``(B, T, K)``.
        real: True for real tokens ``(B, T)``; padding is never perturbed nor counted.
        settings: Optimiser settings.
        keys: One integer per group (e.g. its layer number) that names its noise stream.
    """

    def __init__(
        self,
        groups: Sequence[Group],
        x: torch.Tensor,
        real: torch.Tensor,
        settings: Settings,
        keys: Sequence[int],
    ) -> None:
        self.groups = list(groups)
        self.x = x.detach()
        self.real = real
        self.settings = settings
        self.keys = list(keys)
        n, width, dim = self.x.shape
        self.n, self.width, self.dim, self.n_groups = n, width, dim, len(self.groups)
        lengths = real.sum(1).tolist()
        if min(lengths) < 1:
            raise TextlensError("a text has no tokens to explain: give at least one word")
        with torch.no_grad():
            all_rows = torch.arange(n, device=self.x.device)
            self.cleans = [group.phi(self.x, all_rows) for group in self.groups]
        for clean in self.cleans:
            if not torch.isfinite(clean).all():
                raise TextlensError("Phi returned NaN or infinite values for the input text")
        self.noise = Noise(lengths, self.keys, dim, settings.seed, self.x.device)
        self.real_g = real.unsqueeze(1).expand(n, self.n_groups, width)
        self.bounded = settings.parameterization == "bounded"
        self.upper = log_upper_bound(self.x, real, settings).unsqueeze(1)  # (B, 1, T)

    def clamp(self, log_sigma: torch.Tensor) -> torch.Tensor:
        """``log_sigma`` ``(B, G, T)`` within each token's bounds."""
        return torch.minimum(log_sigma.clamp_min(LOG_SIGMA_MIN), self.upper)

    def saturated(self, log_sigma: torch.Tensor) -> torch.Tensor:
        """True where a real token's log sigma is at its bound ``(B, G, T)``."""
        return (log_sigma >= self.upper - SATURATED) & self.real_g

    def everyone(self) -> torch.Tensor:
        """Every (text, group) pair, ``(B, G)`` True."""
        return torch.ones((self.n, self.n_groups), dtype=torch.bool, device=self.x.device)

    def losses(
        self, param: torch.Tensor, samples: torch.Tensor, active: torch.Tensor
    ) -> torch.Tensor:
        """Loss ``(B, G)`` of the active (text, group) pairs; 0 for the others."""
        sigma = self.to_sigma(param)
        out = torch.zeros((self.n, self.n_groups), device=self.x.device, dtype=self.x.dtype)
        for g, (group, clean) in enumerate(zip(self.groups, self.cleans, strict=True)):
            texts = active[:, g].nonzero().squeeze(1)
            if len(texts):
                value = group_loss(
                    group, self.x, clean, sigma[texts, g], samples[texts, g], self.real,
                    self.settings.rate, texts,
                )  # fmt: skip
                out = out.index_put((texts, torch.full_like(texts, g)), value)
        return out

    def loss_at(self, log_sigma: torch.Tensor, chunk: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss ``(B, G)`` at ``log_sigma`` over ``LOSS_SAMPLES`` samples, and its SE.

        The samples come from streams of their own (seed + ``LOSS_STREAM``, one per text and
        group), so the figure is the same whatever solver, batch or stopping step led there.
        """
        values = self.loss_samples(log_sigma, chunk=chunk)  # (B, G, LOSS_SAMPLES)
        return values.mean(-1), values.std(-1) / math.sqrt(values.shape[-1])

    def loss_samples(
        self, log_sigma: torch.Tensor, active: torch.Tensor | None = None, chunk: int = 4
    ) -> torch.Tensor:
        """The loss of each of the ``LOSS_SAMPLES`` samples ``(B, G, LOSS_SAMPLES)`` of the
        active pairs (default: all; NaN for the others). Every call draws the same samples for
        a pair, so two answers compare sample by sample."""
        settings = self.settings
        active = self.everyone() if active is None else active
        noise = Noise(
            self.real.sum(1).tolist(), self.keys, self.dim, settings.seed + LOSS_STREAM,
            self.x.device,
        )  # fmt: skip
        sigma = torch.exp(self.clamp(log_sigma))
        out = torch.full(
            (self.n, self.n_groups, LOSS_SAMPLES), math.nan, device=self.x.device,
            dtype=self.x.dtype,
        )  # fmt: skip
        with torch.no_grad():
            for start in range(0, LOSS_SAMPLES, chunk):
                k = min(chunk, LOSS_SAMPLES - start)
                samples = noise.draw(k, self.width, self.x.dtype, active)
                for g, (group, clean) in enumerate(zip(self.groups, self.cleans, strict=True)):
                    texts = active[:, g].nonzero().squeeze(1)
                    if len(texts):
                        out[texts, g, start : start + k] = group_loss(
                            group, self.x, clean, sigma[texts, g], samples[texts, g], self.real,
                            settings.rate, texts, per_sample=True,
                        )  # fmt: skip
        return out

    def drowned(self, log_sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pairs whose tokens at the bound lower the loss when brought back together, and the
        point to start again from ``(B, G, T)``.

        Where Phi saturates, every token's noise can drown it at once: each token then looks
        irrelevant given the others' noise, a fixed point of the solver far above the loss's
        minimum. The tokens at the bound are brought back together by factors of 10, 100 and
        1000, and the lowest loss (sample by sample on the same noise) is kept where it is
        below the answer's.
        """
        saturated = self.saturated(log_sigma)
        pairs = saturated.any(-1)
        if not bool(pairs.any()):
            return pairs, log_sigma
        base = self.loss_samples(log_sigma, pairs)
        best, start = torch.zeros_like(base[..., 0]), log_sigma
        for depth in (1, 2, 3):
            trial = torch.where(saturated, self.upper - depth * math.log(10.0), log_sigma)
            trial = self.clamp(trial)
            gain = (self.loss_samples(trial, pairs) - base).mean(-1)  # (B, G)
            better = pairs & (gain < best)
            best = torch.where(better, gain, best)
            start = torch.where(better.unsqueeze(-1), trial, start)
        return pairs & (best < 0), start

    def confirm_below(self, log_sigma: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """Move the ``up`` tokens (their estimates point to the bound, which they have not
        reached) to their bound where that lowers the loss: all of a pair's together first, then
        each alone; the mirror of ``confirm_saturation``, for tokens the solver held back while
        their estimates were not confident."""
        up = up & self.real_g & ~self.saturated(log_sigma)
        if not bool(up.any()):
            return log_sigma
        bound = self.upper.expand_as(log_sigma)
        pairs = up.any(-1)
        base = self.loss_samples(log_sigma, pairs)
        together = torch.where(up, bound, log_sigma)
        values = self.loss_samples(together, pairs)
        lower = pairs & ((values - base).mean(-1) < 0)
        log_sigma = torch.where(lower.unsqueeze(-1), together, log_sigma)
        base = torch.where(lower.unsqueeze(-1), values, base)
        return self._try_each(log_sigma, up & ~lower.unsqueeze(-1), bound, base)[0]

    def confirm_saturation(
        self, log_sigma: torch.Tensor, start: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep a token at its bound on sigma only where that gives the lower loss.

        Each token at the bound is brought back below it (to its starting value, at most a third
        of the bound) one at a time per pair, and the loss is compared sample by sample on the
        same noise; where bringing it back lowers the loss, it stays back. Returns the log sigma
        and the confirmed saturation ``(B, G, T)``.
        """
        saturated = self.saturated(log_sigma)
        if not bool(saturated.any()):
            return log_sigma, saturated
        back = torch.minimum(start, self.upper - math.log(3.0))
        base = self.loss_samples(log_sigma, saturated.any(-1))
        log_sigma, moved = self._try_each(log_sigma, saturated, back, base)
        return log_sigma, saturated & ~moved

    def _try_each(
        self, log_sigma: torch.Tensor, picks: torch.Tensor, moved: torch.Tensor, base: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Move each picked token to its value in ``moved``, one token a pair at a time (the
        pairs in one pass), and keep the move where the loss, compared sample by sample with
        ``base`` (the current answer's), is lower. Returns the log sigma and the kept moves."""
        rank = picks.long().cumsum(-1) - 1  # each picked token's turn in its pair
        kept = torch.zeros_like(picks)
        for turn in range(int(picks.sum(-1).max()) if bool(picks.any()) else 0):
            pick = picks & (rank == turn)
            tried = pick.any(-1)
            trial = torch.where(pick, moved, log_sigma)
            values = self.loss_samples(trial, tried)
            lower = tried & ((values - base).mean(-1) < 0)
            keep = pick & lower.unsqueeze(-1)
            log_sigma = torch.where(keep, trial, log_sigma)
            base = torch.where(lower.unsqueeze(-1), values, base)
            kept |= keep
        return log_sigma, kept

    def to_sigma(self, param: torch.Tensor) -> torch.Tensor:
        if self.bounded:
            return self.settings.scale * torch.sigmoid(param)
        return torch.exp(self.clamp(param))

    def from_log_sigma(self, log_sigma: torch.Tensor) -> torch.Tensor:
        if not self.bounded:
            return log_sigma
        p = (log_sigma.exp() / self.settings.scale).clamp(1e-6, 1 - 1e-6)
        return torch.log(p / (1 - p))

    def start(self) -> tuple[torch.Tensor, list[str]]:
        """The starting parameter ``(B, G, T)`` and, per pair, which start was chosen."""
        settings, x = self.settings, self.x
        n, n_groups, width = self.n, self.n_groups, self.width
        if settings.init == "closed-form":
            cf = closed_form(self.groups, x, self.real, settings, self.keys, self.upper[:, 0])
            candidates = [cf, cf - math.log(3.0), cf - math.log(10.0)]
            starts = ["closed-form", "closed-form/3", "closed-form/10"]
            everyone = self.everyone()
            with torch.no_grad():
                # the candidates differ by factors of 3: one sample tells them apart for the
                # fixed-point solver, which then corrects the level within a few iterations
                fixed_point = settings.solver == "fixed-point"
                probe = self.noise.draw(
                    1 if fixed_point else settings.n_samples, width, x.dtype, everyone
                )
                scores = torch.stack(
                    [self.losses(self.from_log_sigma(c), probe, everyone) for c in candidates]
                )
            best = scores.argmin(0)  # (B, G)
            stacked = torch.stack(candidates)  # (C, B, G, T)
            index = best[None, :, :, None].expand(1, n, n_groups, width)
            log_sigma0 = stacked.gather(0, index)[0]
            return self.from_log_sigma(log_sigma0), [starts[i] for i in best.flatten().tolist()]
        if self.bounded:  # the reference starts from ratio ~ N(0, 1)
            param0 = torch.stack(
                [
                    torch.stack(
                        [
                            torch.randn(width, generator=stream(settings.seed + 1, k, x.device))
                            for k in self.keys
                        ]
                    )
                    for _ in range(n)
                ]
            ).to(x.device, x.dtype)
        else:
            param0 = torch.full((n, n_groups, width), math.log(0.1), device=x.device, dtype=x.dtype)
            param0 = self.clamp(param0)
        return param0, ["constant"] * (n * n_groups)

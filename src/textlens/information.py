"""The information-based explanation of Guan et al. (ICML 2019), for any Phi, batched.

For word embeddings ``x`` (``S`` words of ``K`` dimensions) and a function ``Phi``, learn one noise
scale ``sigma_i`` per word that ``Phi`` tolerates, by minimising

    L(sigma) = E_eps[mean_d ((Phi_d(x + sigma eps) - Phi_d(x)) / r_d)^2] - rate mean_i log sigma_i

where ``r_d`` is the spread of output unit ``d`` over real inputs. A small sigma means the word's
information reaches ``Phi``. The paper's measure is the conditional entropy
``H_i = K log sigma_i + K/2 log(2 pi e)`` nats.

This module is the numeric core: several texts (padded) and several Phi ("groups", e.g. layers)
are optimised at once, each (text, group) with its own sigma, its own noise stream and its own
convergence test.

Two solvers. ``fixed-point`` (the default) solves the stationarity condition directly: with
``g_i = d E[data] / d log sigma_i`` estimated from the noise samples, the optimum has
``g_i = rate / S``; writing ``g_i = a_i sigma_i^2`` (exact while Phi is close to linear over the
noise) gives ``sigma_i^2 = rate / (S a_i)``. Each iteration estimates ``a_i`` at the current
sigma, averages it over the last three quarters of the iterations, and moves log sigma towards
that answer (at most ``max_step`` per iteration). From the spread of the estimates it knows the
standard error of each log sigma, and it stops once the ranking of the tokens is settled: the
expected Spearman correlation between the answer and the answer moved by its standard errors is
at least ``1 - tol``. ``adam`` follows the reference (Adam on log sigma, or on the bounded
parameter), with a convergence test on the change of log sigma.

``information_loss`` is the function form for users of the reference's ``Interpreter(x, Phi)``
style; ``methods/information_loss.py`` wires it to HF models.

References:
    Guan et al., 2019, "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
    PMLR 97:2454-2463.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from textlens.errors import TextlensError
from textlens.lazy import torch

LOG_2PIE = math.log(2 * math.pi * math.e)
FLOOR_RELATIVE = 1e-3
"""Regularisation floor: r_d is at least this fraction of the median r over units."""
FLOOR_ABSOLUTE = 1e-8
LOG_SIGMA_MIN, LOG_SIGMA_MAX = math.log(1e-8), math.log(1e4)
MIN_ITERATIONS = 6
"""The fixed-point solver runs at least this many iterations."""
WINDOW = 0.75
"""The fixed-point solver averages its estimates over this last fraction of its iterations."""
SE_FLOOR = 0.005
"""The fixed-point solver also stops once the RMS standard error of log sigma is below this
(tokens whose order cannot be told apart need not hold it up)."""
RANK_DRAWS = 32
"""Draws of the fixed-point solver's ranking test."""
DEFAULT_TOL = {"fixed-point": 0.03, "adam": 0.05}

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
    seed: int = 0

    def __post_init__(self) -> None:
        if self.solver not in DEFAULT_TOL:
            raise TextlensError(f"unknown solver {self.solver!r}; choose fixed-point or adam")
        if self.solver == "fixed-point" and self.parameterization == "bounded":
            raise TextlensError("the bounded parameterization needs solver='adam'")

    @property
    def tolerance(self) -> float:
        """``tol``, or the solver's default when it is None."""
        return DEFAULT_TOL[self.solver] if self.tol is None else self.tol


@dataclass(frozen=True)
class Result:
    """Per (text, group) outputs; token axes are padded like the input.

    Attributes:
        sigma: ``(B, G, T)`` noise scales (NaN on padding).
        information: ``(B, G, T)`` H_i in nats (NaN on padding).
        loss: ``(B, G)`` final loss, estimated with the last steps' samples.
        steps: ``(B, G)`` optimiser steps each (text, group) took.
        start_loss: ``(B, G)`` loss estimate at the starting point.
        curve: ``(n_steps, B, G)`` the loss at every step (single-step estimates).
    """

    sigma: torch.Tensor
    information: torch.Tensor
    loss: torch.Tensor
    steps: torch.Tensor
    start_loss: torch.Tensor
    curve: torch.Tensor
    start: list[str] = field(default_factory=list)


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


def _stream(seed: int, key: int, device: torch.device) -> torch.Generator:
    """The generator of one (text, group): seeded by the seed and the group's key only."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + key)


class _Noise:
    """One generator per (text, group), so a text's noise for a layer is the same whether it is
    explained alone or in a batch, and with one layer or all of them."""

    def __init__(self, lengths: Sequence[int], keys: Sequence[int], dim: int, seed: int, device):
        self.lengths = list(lengths)
        self.dim = dim
        self.device = device
        self.gens = [[_stream(seed, key, device) for key in keys] for _ in lengths]

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


def _group_loss(
    group: Group,
    x: torch.Tensor,
    clean: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    real: torch.Tensor,
    rate: float,
    texts: torch.Tensor,
) -> torch.Tensor:
    """Loss of one group for the given texts ``(n,)``; ``sigma (n, T)``, ``noise (n, S, T, K)``."""
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
    data = data.view(n, samples).mean(1)
    own = real[texts]
    reg = torch.log(sigma).masked_fill(~own, 0.0).sum(1) / own.sum(1)
    return data - rate * reg


def _closed_form(
    groups: Sequence[Group],
    x: torch.Tensor,
    real: torch.Tensor,
    settings: Settings,
    keys: Sequence[int],
) -> torch.Tensor:
    """First-order start: sigma_i^2 = rate * M / (2 S a_i), a_i from random VJPs. ``(B, G, T)``."""
    n, width, _ = x.shape
    k = settings.n_probes
    rows = torch.arange(n, device=x.device).repeat_interleave(k)
    log_sigma = torch.zeros((n, len(groups), width), device=x.device, dtype=x.dtype)
    for g, group in enumerate(groups):
        gens = [_stream(settings.seed + 7919, keys[g], x.device) for _ in range(n)]
        with torch.enable_grad():
            leaf = x[rows].detach().requires_grad_(True)
            out = group.phi(leaf, rows)
            probes = (
                torch.cat(
                    [
                        torch.randint(0, 2, (k, *out.shape[1:]), generator=gen, device=x.device)
                        for gen in gens
                    ]
                ).to(out.dtype)
                * 2
                - 1
            )
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
    return log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX).masked_fill(~real.unsqueeze(1), 0.0)


def optimize(
    groups: Sequence[Group],
    x: torch.Tensor,
    real: torch.Tensor,
    settings: Settings,
    keys: Sequence[int] | None = None,
) -> Result:
    """Learn sigma for every (text, group); see the module docstring for the loss.

    Args:
        groups: The Phi to explain, each with its regularisation.
        x: Word embeddings ``(B, T, K)``.
        real: True for real tokens ``(B, T)``; padding is never perturbed nor counted.
        settings: Optimiser settings.
        keys: One integer per group (e.g. its layer number) that names its noise stream;
            default ``0..G-1``.
    """
    x = x.detach()
    n, width, dim = x.shape
    n_groups = len(groups)
    lengths = real.sum(1).tolist()
    if min(lengths) < 1:
        raise TextlensError("a text has no tokens to explain: give at least one word")
    with torch.no_grad():
        all_rows = torch.arange(n, device=x.device)
        cleans = [group.phi(x, all_rows) for group in groups]
    for clean in cleans:
        if not torch.isfinite(clean).all():
            raise TextlensError("Phi returned NaN or infinite values for the input text")
    keys = list(range(n_groups)) if keys is None else list(keys)
    noise = _Noise(lengths, keys, dim, settings.seed, x.device)
    real_g = real.unsqueeze(1).expand(n, n_groups, width)

    def losses(param: torch.Tensor, samples: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Loss ``(B, G)`` of the active (text, group) pairs; 0 for the others."""
        sigma = to_sigma(param)
        out = torch.zeros((n, n_groups), device=x.device, dtype=x.dtype)
        for g, (group, clean) in enumerate(zip(groups, cleans, strict=True)):
            texts = active[:, g].nonzero().squeeze(1)
            if len(texts):
                value = _group_loss(
                    group, x, clean, sigma[texts, g], samples[texts, g], real, settings.rate, texts
                )
                out = out.index_put((texts, torch.full_like(texts, g)), value)
        return out

    bounded = settings.parameterization == "bounded"

    def to_sigma(param: torch.Tensor) -> torch.Tensor:
        if bounded:
            return settings.scale * torch.sigmoid(param)
        return torch.exp(param.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX))

    def from_log_sigma(log_sigma: torch.Tensor) -> torch.Tensor:
        if not bounded:
            return log_sigma
        p = (log_sigma.exp() / settings.scale).clamp(1e-6, 1 - 1e-6)
        return torch.log(p / (1 - p))

    # -- start ---------------------------------------------------------------------------------
    starts = ["constant"]
    fixed_point = settings.solver == "fixed-point"
    if settings.init == "closed-form":
        cf = _closed_form(groups, x, real, settings, keys)
        candidates = [cf, cf - math.log(3.0), cf - math.log(10.0)]
        starts = ["closed-form", "closed-form/3", "closed-form/10"]
        everyone = torch.ones((n, n_groups), dtype=torch.bool, device=x.device)
        with torch.no_grad():
            # the candidates differ by factors of 3: one sample tells them apart for the
            # fixed-point solver, which then corrects the level within a few iterations
            probe = noise.draw(1 if fixed_point else settings.n_samples, width, x.dtype, everyone)
            scores = torch.stack([losses(from_log_sigma(c), probe, everyone) for c in candidates])
        best = scores.argmin(0)  # (B, G)
        stacked = torch.stack(candidates)  # (C, B, G, T)
        log_sigma0 = stacked.gather(0, best[None, :, :, None].expand(1, n, n_groups, width))[0]
        chosen = [starts[i] for i in best.flatten().tolist()]
        param0 = from_log_sigma(log_sigma0)
    else:
        if bounded:  # the reference starts from ratio ~ N(0, 1)
            param0 = torch.stack(
                [
                    torch.stack(
                        [
                            torch.randn(width, generator=_stream(settings.seed + 1, k, x.device))
                            for k in keys
                        ]
                    )
                    for _ in range(n)
                ]
            ).to(x.device, x.dtype)
        else:
            param0 = torch.full((n, n_groups, width), math.log(0.1), device=x.device, dtype=x.dtype)
        chosen = ["constant"] * (n * n_groups)

    if fixed_point:
        log_sigma, steps, start_loss, curve, final_loss = _solve_fixed_point(
            losses, noise, param0, real, settings
        )
        return _result(log_sigma, real_g, dim, final_loss, steps, start_loss, curve, chosen)

    # -- optimise ------------------------------------------------------------------------------
    # Adam with a learning rate per (text, group). Each pair runs at ``lr`` until the RMS change
    # of log sigma between two windows falls below ``tol``; it then polishes at ``lr * polish``
    # for ``2 * window`` steps, whose mean log sigma is the answer, and stops.
    param = param0.clone()
    beta1, beta2 = settings.betas
    moment1 = torch.zeros_like(param)
    moment2 = torch.zeros_like(param)
    active = torch.ones((n, n_groups), dtype=torch.bool, device=x.device)
    steps = torch.zeros((n, n_groups), dtype=torch.long, device=x.device)
    polish_from = torch.full((n, n_groups), -1, dtype=torch.long, device=x.device)
    rate = torch.full((n, n_groups), settings.lr, device=x.device, dtype=x.dtype)
    history: list[torch.Tensor] = []
    curve: list[torch.Tensor] = []
    best_loss = torch.full((n, n_groups), math.inf, device=x.device, dtype=x.dtype)
    best_param = param0.detach().clone()
    start_loss = None
    w = settings.window
    for step in range(settings.max_steps):
        samples = noise.draw(settings.n_samples, width, x.dtype, active)
        with torch.enable_grad():
            leaf = param.detach().requires_grad_(True)
            loss = losses(leaf, samples, active)  # (B, G); 0 where stopped
            # gradients for sigma only: the model's weights get none (and keep no .grad)
            (grad,) = torch.autograd.grad((loss * active).sum(), leaf)
        if start_loss is None:
            start_loss = loss.detach().clone()
        if settings.keep_best:
            better = (loss.detach() < best_loss) & active
            best_loss = torch.where(better, loss.detach(), best_loss)
            best_param = torch.where(better.unsqueeze(-1), param, best_param)
        with torch.no_grad():
            on = active.unsqueeze(-1)
            steps += active
            t = steps.clamp_min(1).unsqueeze(-1).to(x.dtype)
            moment1 = torch.where(on, beta1 * moment1 + (1 - beta1) * grad, moment1)
            moment2 = torch.where(on, beta2 * moment2 + (1 - beta2) * grad * grad, moment2)
            update = (moment1 / (1 - beta1**t)) / ((moment2 / (1 - beta2**t)).sqrt() + 1e-8)
            param = torch.where(on, param - rate.unsqueeze(-1) * update, param)
        curve.append(loss.detach().masked_fill(~active, math.nan))
        history.append(to_sigma(param).log())
        if settings.tolerance > 0 and step + 1 >= max(settings.min_steps, 2 * w):
            recent = torch.stack(history[-w:]).mean(0)
            before = torch.stack(history[-2 * w : -w]).mean(0)
            sq = (recent - before).pow(2).masked_fill(~real_g, 0.0).sum(-1)
            change = (sq / real_g.sum(-1)).sqrt()  # RMS change of log sigma, (B, G)
            settle = active & (polish_from < 0) & (change < settings.tolerance)
            polish_from = torch.where(settle, steps, polish_from)
            rate = torch.where(settle, rate * settings.polish, rate)
            done = (polish_from >= 0) & (steps - polish_from >= 2 * w)
            active &= ~done
            if not active.any():
                break

    # -- answer --------------------------------------------------------------------------------
    with torch.no_grad():
        if settings.keep_best:
            log_sigma = to_sigma(best_param).log()
        elif settings.average_last and history:
            final = torch.zeros_like(history[-1])
            for b in range(n):
                for g in range(n_groups):
                    k = int(steps[b, g])
                    # polished pairs: the polish steps; others (step cap): the last half
                    start = int(polish_from[b, g]) if polish_from[b, g] >= 0 else k - k // 2
                    start = min(start, k - 1)  # settled on the very last step: keep that one
                    final[b, g] = torch.stack([h[b, g] for h in history[start:k]]).mean(0)
            log_sigma = final
        else:
            log_sigma = history[-1]
        everyone = torch.ones((n, n_groups), dtype=torch.bool, device=x.device)
        last = noise.draw(settings.n_samples, width, x.dtype, everyone)
        final_loss = losses(from_log_sigma(log_sigma), last, everyone)
    return _result(log_sigma, real_g, dim, final_loss, steps, start_loss, curve, chosen)


def _result(
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


def _rank_stability(
    values: torch.Tensor, se: torch.Tensor, mask: torch.Tensor, draws: torch.Tensor
) -> torch.Tensor:
    """Expected Spearman correlation between ``values`` and ``values + se * z`` over the masked
    tokens, averaged over the draws ``z (D, T)``: how settled the ranking of the tokens is."""
    ok = mask.unsqueeze(-2)  # (B, G, 1, T)
    se = torch.where(torch.isfinite(se), se, torch.full_like(se, 1e6))
    moved = values.unsqueeze(-2) + se.unsqueeze(-2) * draws  # (B, G, D, T)
    big = torch.finfo(values.dtype).max

    def ranks(v: torch.Tensor) -> torch.Tensor:
        v = torch.where(ok, v, torch.full_like(v, big))  # masked tokens rank last, then ignored
        return v.argsort(-1).argsort(-1).to(values.dtype)

    a, b = ranks(values.unsqueeze(-2).expand_as(moved)), ranks(moved)
    weight = ok.to(values.dtype)
    count = weight.sum(-1, keepdim=True).clamp_min(1.0)
    a = (a - (a * weight).sum(-1, keepdim=True) / count) * weight
    b = (b - (b * weight).sum(-1, keepdim=True) / count) * weight
    corr = (a * b).sum(-1) / ((a * a).sum(-1) * (b * b).sum(-1)).sqrt().clamp_min(1e-30)
    return corr.mean(-1)


def _solve_fixed_point(
    losses: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    noise: _Noise,
    log_sigma0: torch.Tensor,
    real: torch.Tensor,
    settings: Settings,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[torch.Tensor], torch.Tensor]:
    """The fixed-point solver (see the module docstring). Returns log sigma ``(B, G, T)``, the
    iterations per pair, the first loss estimate, the loss at every iteration and each pair's
    loss at its last iteration."""
    n, n_groups, width = log_sigma0.shape
    device, dtype = log_sigma0.device, log_sigma0.dtype
    real_g = real.unsqueeze(1).expand(n, n_groups, width)
    per_token = settings.rate / real.sum(1).to(dtype)  # the optimum has g_i = rate / S
    log_target = torch.log(per_token).view(n, 1, 1)
    tol = settings.tolerance
    # running sums of a and a^2 after every iteration, so that any pair's window is a difference
    sums = torch.zeros((settings.max_steps + 1, *real_g.shape), dtype=torch.float64, device=device)
    squares = torch.zeros_like(sums)
    log_sigma = log_sigma0.clone()
    # the same draws for every text (column-major: a text's draws do not depend on the width)
    draws = torch.randn((width, RANK_DRAWS), generator=_stream(settings.seed + 31, 0, device))
    draws = draws.to(device, dtype).T
    active = torch.ones((n, n_groups), dtype=torch.bool, device=device)
    steps = torch.zeros((n, n_groups), dtype=torch.long, device=device)
    curve: list[torch.Tensor] = []
    start_loss = None
    last_loss = torch.full((n, n_groups), math.nan, device=device, dtype=dtype)
    for step in range(settings.max_steps):
        samples = noise.draw(settings.n_samples, width, dtype, active)
        with torch.enable_grad():
            leaf = log_sigma.detach().requires_grad_(True)
            loss = losses(leaf, samples, active)
            (grad,) = torch.autograd.grad((loss * active).sum(), leaf)
        if start_loss is None:
            start_loss = loss.detach().clone()
        curve.append(loss.detach().masked_fill(~active, math.nan))
        last_loss = torch.where(active, loss.detach(), last_loss)
        with torch.no_grad():
            on = active.unsqueeze(-1) & real_g
            # d data / d log sigma_i = sigma_i^2 a_i
            a = ((grad + per_token.view(n, 1, 1)) * torch.exp(-2 * log_sigma)).double()
            a = a.masked_fill(~on, 0.0)
            sums[step + 1] = sums[step] + a
            squares[step + 1] = squares[step] + a * a
            steps += active
            k = steps.view(1, n, n_groups, 1).expand(1, n, n_groups, width)
            low = (k * (1 - WINDOW)).long()
            count = (k - low).to(torch.float64)[0]
            mean = (sums.gather(0, k) - sums.gather(0, low))[0] / count
            mean_sq = (squares.gather(0, k) - squares.gather(0, low))[0] / count
            target = 0.5 * (log_target - torch.log(mean.clamp_min(1e-300))).to(dtype)
            move = (target - log_sigma).clamp(-settings.max_step, settings.max_step)
            # no effect at all (a word Phi never sees): as large as allowed; a noisy estimate
            # at or below 0: grow by the largest step
            grow = torch.full_like(move, settings.max_step)
            move = torch.where(mean > 0, move, grow)
            new = torch.where(mean == 0, torch.full_like(move, LOG_SIGMA_MAX), log_sigma + move)
            log_sigma = torch.where(on, new.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX), log_sigma)
            # convergence: is the ranking of the tokens settled, given the standard errors?
            free = log_sigma >= LOG_SIGMA_MAX
            counted = real_g & ~free
            var = (mean_sq - mean * mean).clamp_min(0.0) * count / (count - 1).clamp_min(1.0)
            se = 0.5 * (var / count).sqrt() / mean.abs().clamp_min(1e-300)
            se = torch.where(mean > 0, se, torch.full_like(se, math.inf)).to(dtype)
            rms = (
                se.pow(2).masked_fill(~counted, 0.0).sum(-1) / counted.sum(-1).clamp_min(1)
            ).sqrt()
            clipped = ((move.abs() >= settings.max_step) & counted).any(-1)
            settled = (steps >= MIN_ITERATIONS) & ~clipped & active
            if settled.any():
                stable = _rank_stability(log_sigma, se, counted, draws) >= 1 - tol
                stable |= counted.sum(-1) <= 1  # one word: nothing to rank
                settled &= stable | (rms <= SE_FLOOR)
            active &= ~settled
            if not active.any():
                break
    return log_sigma, steps, start_loss, curve, last_loss


def information_loss(
    x: torch.Tensor,
    phi: Callable[[torch.Tensor], torch.Tensor],
    *,
    regularization: torch.Tensor | None = None,
    corpus: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    **settings: object,
) -> Result:
    """Function form, in the style of the reference ``Interpreter(x, Phi)``.

    Args:
        x: Word embeddings ``(S, K)`` for one text, or ``(B, T, K)`` for a padded batch.
        phi: Maps embeddings ``(N, T, K)`` to outputs ``(N, ...)``; unit axes last.
        regularization: ``r``, the spread of each output unit (broadcast against one row of
            Phi).
        corpus: Alternatively, embeddings ``(M, T, K)`` of real inputs: ``r`` becomes the
            floored per-unit std of Phi over them.
        mask: ``(B, T)`` True for real tokens (default: all).
        settings: Any ``Settings`` field (``rate``, ``n_samples``, ``max_steps``, ``seed``...).

    With neither ``regularization`` nor ``corpus``, ``r`` is the text's own root-mean-square
    output (the reference's fallback).

    Example:
        >>> res = information_loss(x, lambda e: e @ w)   # x: (5, 256)
        >>> res.sigma.shape
        torch.Size([1, 1, 5])
    """
    single = x.dim() == 2
    xb = x.unsqueeze(0) if single else x
    if xb.dim() != 3:
        raise TextlensError("x must be (words, dims) or (texts, words, dims)")
    real = (
        torch.ones(xb.shape[:2], dtype=torch.bool, device=xb.device)
        if mask is None
        else mask.to(xb.device).bool()
    )
    r = regularization
    if r is None and corpus is not None:
        with torch.no_grad():
            r = regularization_scale(phi(corpus.to(xb.device)))
    if r is None:
        with torch.no_grad():
            ref = phi(xb)
        r = ref.pow(2).mean().sqrt().clamp_min(FLOOR_ABSOLUTE)
    group = Group(phi=lambda e, rows: phi(e), scale=r.to(xb.device))
    known = set(Settings.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TextlensError(
            f"unknown setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return optimize([group], xb, real, Settings(**settings))  # type: ignore[arg-type]

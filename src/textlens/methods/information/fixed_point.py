"""The fixed-point solver: solve the optimum's condition sigma_i^2 = rate / (S a_i) directly.

At the optimum the derivative of the data term with respect to log sigma_i equals rate / S for
every word; writing it as a_i sigma_i^2 (exact while Phi is close to linear over the noise)
gives sigma_i^2 = rate / (S a_i). Each iteration estimates a_i from the noise samples at the
current sigma, averages it over the last three quarters of the iterations, and moves log sigma
towards the answer (at most ``max_step``); it stops once the ranking of the tokens is settled
given the estimates' standard errors (``docs/information.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from textlens.lazy import torch
from textlens.methods.information.noise import Noise, stream
from textlens.methods.information.problem import (
    LOG_SIGMA_MIN,
    MIN_ITERATIONS,
    RANK_DRAWS,
    SE_FLOOR,
    WINDOW,
    Settings,
)

GROW_CONFIDENCE = 2.0
"""Standard errors the window's mean of a_i must lie below zero before a token grows by the
largest step (one-sided, about 98%): a zero or negative estimate from a few noise samples then no
longer pushes a token that Phi does use to the bound on sigma."""


def rank_stability(
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


def honest_se(
    se: torch.Tensor,
    var: torch.Tensor,
    mean: torch.Tensor,
    count: torch.Tensor,
    counted: torch.Tensor,
) -> torch.Tensor:
    """The standard error reported with each log sigma: the window's own ``se`` made honest.

    Two corrections, both measured on the linear toy (``tests``: over 100 seeds the 95%
    intervals cover the true error at their nominal rate). A variance from a handful of window
    values is itself noisy, so the SE is scaled by t(0.975, n - 1) / 1.96 (the Student-t
    quantile, Cornish-Fisher approximation); and the solver stops when the ranking looks
    settled, which favours windows whose variance came out low, so each token's SE is at least
    the one its pair's pooled relative variance gives.
    """
    nu = (count - 1).clamp_min(1.0)
    t = 1.96 + 2.4223 / nu + 2.8897 / nu**2
    scaled = se * (t / 1.96).to(se.dtype)
    relative = (var / (mean * mean).clamp_min(1e-300)).masked_fill(~counted, 0.0)
    pooled = relative.sum(-1, keepdim=True) / counted.sum(-1, keepdim=True).clamp_min(1)
    floor = (0.5 * (pooled / count).sqrt()).to(se.dtype)
    return torch.maximum(scaled, floor)


def solve_fixed_point(
    losses: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    noise: Noise,
    log_sigma0: torch.Tensor,
    real: torch.Tensor,
    settings: Settings,
    upper: torch.Tensor,
    on_settle: Callable[[int, int], None] | None = None,
    only: torch.Tensor | None = None,
) -> tuple[
    torch.Tensor,
    torch.Tensor,
    torch.Tensor | None,
    list[torch.Tensor],
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
]:
    """The fixed-point solver (see the module docstring). Returns log sigma ``(B, G, T)``, the
    iterations per pair, the first loss estimate, the loss at every iteration, each pair's
    loss at its last iteration, the standard error of each log sigma ``(B, G, T)``
    (``honest_se``), whether each pair settled ``(B, G)`` (False: it ran to
    ``max_steps``) and the tokens whose own estimate points to the bound without having
    reached it ``(B, G, T)`` (for ``Problem.confirm_below``). ``upper`` ``(B, 1, T)``: each
    token's largest log sigma.
    ``on_settle(group, iterations)`` is called as every text of a group has settled. ``only``
    ``(B, G)``: solve these pairs only (the others keep ``log_sigma0`` and take no step)."""
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
    draws = torch.randn((width, RANK_DRAWS), generator=stream(settings.seed + 31, 0, device))
    draws = draws.to(device, dtype).T
    active = torch.ones((n, n_groups), dtype=torch.bool, device=device)
    if only is not None:
        active &= only
    steps = torch.zeros((n, n_groups), dtype=torch.long, device=device)
    curve: list[torch.Tensor] = []
    start_loss = None
    last_loss = torch.full((n, n_groups), math.nan, device=device, dtype=dtype)
    final_se = torch.full((n, n_groups, width), math.inf, device=device, dtype=dtype)
    final_up = torch.zeros((n, n_groups, width), dtype=torch.bool, device=device)
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
            var = (mean_sq - mean * mean).clamp_min(0.0) * count / (count - 1).clamp_min(1.0)
            # an estimate at or below 0 grows the token by the largest step only when it is
            # confidently there (the window's upper confidence bound too); otherwise the token
            # moves towards the answer that bound gives (the smallest sigma the estimates
            # allow), and holds while one iteration gives no spread. No effect at all (a word
            # Phi never sees, every value exactly 0): as large as allowed.
            upper_a = mean + GROW_CONFIDENCE * (var / count).sqrt()
            used = torch.where(mean > 0, mean, upper_a)
            target = 0.5 * (log_target - torch.log(used.clamp_min(1e-300))).to(dtype)
            move = (target - log_sigma).clamp(-settings.max_step, settings.max_step)
            grow = torch.full_like(move, settings.max_step)
            move = torch.where(used > 0, move, torch.where(count >= 2, grow, 0.0 * move))
            never = (mean == 0) & (mean_sq == 0)
            new = torch.where(never, upper.expand_as(move), log_sigma + move)
            new = torch.minimum(new.clamp_min(LOG_SIGMA_MIN), upper)
            log_sigma = torch.where(on, new, log_sigma)
            # convergence: is the ranking of the tokens settled, given the standard errors?
            free = log_sigma >= upper
            counted = real_g & ~free
            se = 0.5 * (var / count).sqrt() / mean.abs().clamp_min(1e-300)
            se = torch.where(mean > 0, se, torch.full_like(se, math.inf)).to(dtype)
            rms = (
                se.pow(2).masked_fill(~counted, 0.0).sum(-1) / counted.sum(-1).clamp_min(1)
            ).sqrt()
            clipped = ((move.abs() >= settings.max_step) & counted).any(-1)
            settled = (steps >= MIN_ITERATIONS) & ~clipped & active
            honest = honest_se(se, var, mean, count, counted)
            if settled.any() and settings.precision == "values":
                # the values are settled: the RMS honest standard error of log sigma
                spread = honest.pow(2).masked_fill(~counted, 0.0).sum(-1)
                settled &= (spread / counted.sum(-1).clamp_min(1)).sqrt() <= tol
            elif settled.any():
                stable = rank_stability(log_sigma, se, counted, draws) >= 1 - tol
                stable |= counted.sum(-1) <= 1  # one word: nothing to rank
                settled &= stable | (rms <= SE_FLOOR)
            final_se = torch.where(active.unsqueeze(-1), honest, final_se)
            point = 0.5 * (log_target - torch.log(mean.clamp_min(1e-300))).to(dtype)
            unsure = mean - GROW_CONFIDENCE * (var / count).sqrt() <= 0
            up = real_g & (log_sigma < upper) & (unsure | (point >= upper))
            final_up = torch.where(active.unsqueeze(-1), up, final_up)
            was = active.any(0)
            active &= ~settled
            if on_settle is not None:
                for g in torch.nonzero(was & ~active.any(0)).flatten().tolist():
                    on_settle(g, step + 1)
            if not active.any():
                break
    return log_sigma, steps, start_loss, curve, last_loss, final_se, ~active, final_up

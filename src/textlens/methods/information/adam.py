"""The Adam solver: descend the loss on log sigma (or the reference's bounded parameter).

Adam with a learning rate per (text, group). Each pair runs at ``lr`` until the RMS change of
log sigma between two windows falls below ``tol``; it then polishes at ``lr * polish`` for
``2 * window`` steps, whose mean log sigma is the answer, and stops. ``keep_best`` (the
reference's behaviour) returns the parameters of the lowest single-sample loss instead.
"""

from __future__ import annotations

import math

from textlens.lazy import torch
from textlens.methods.information.problem import Problem

Solution = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor | None", list, "torch.Tensor"]


def solve_adam(problem: Problem, param0: torch.Tensor) -> Solution:
    """Log sigma ``(B, G, T)``, the steps per pair, the first loss estimate, the loss at every
    step, and each pair's loss at the answer."""
    settings, x = problem.settings, problem.x
    n, n_groups, width = problem.n, problem.n_groups, problem.width
    real_g = problem.real_g
    param = param0.clone()
    beta1, beta2 = settings.betas
    moment1 = torch.zeros_like(param)
    moment2 = torch.zeros_like(param)
    active = problem.everyone()
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
        samples = problem.noise.draw(settings.n_samples, width, x.dtype, active)
        with torch.enable_grad():
            leaf = param.detach().requires_grad_(True)
            loss = problem.losses(leaf, samples, active)  # (B, G); 0 where stopped
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
            if not problem.bounded:  # projected: a token at its bound can come back
                param = problem.clamp(param)
        curve.append(loss.detach().masked_fill(~active, math.nan))
        history.append(problem.to_sigma(param).log())
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
    with torch.no_grad():
        if settings.keep_best:
            log_sigma = problem.to_sigma(best_param).log()
        elif settings.average_last and history:
            log_sigma = _polished_mean(history, steps, polish_from)
        else:
            log_sigma = history[-1]
        everyone = problem.everyone()
        last = problem.noise.draw(settings.n_samples, width, x.dtype, everyone)
        final_loss = problem.losses(problem.from_log_sigma(log_sigma), last, everyone)
    return log_sigma, steps, start_loss, curve, final_loss


def _polished_mean(
    history: list[torch.Tensor], steps: torch.Tensor, polish_from: torch.Tensor
) -> torch.Tensor:
    """Per pair, the mean log sigma over its polish steps (or, at the step cap, its last half)."""
    final = torch.zeros_like(history[-1])
    n, n_groups = steps.shape
    for b in range(n):
        for g in range(n_groups):
            k = int(steps[b, g])
            start = int(polish_from[b, g]) if polish_from[b, g] >= 0 else k - k // 2
            start = min(start, k - 1)  # settled on the very last step: keep that one
            final[b, g] = torch.stack([h[b, g] for h in history[start:k]]).mean(0)
    return final

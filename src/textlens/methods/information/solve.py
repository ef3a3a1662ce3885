"""``optimize``: the information method's loss minimised by the solver the settings name."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from textlens.lazy import torch
from textlens.methods.information.adam import solve_adam
from textlens.methods.information.fixed_point import solve_fixed_point
from textlens.methods.information.problem import Group, Problem, Result, Settings, make_result


def optimize(
    groups: Sequence[Group],
    x: torch.Tensor,
    real: torch.Tensor,
    settings: Settings,
    keys: Sequence[int] | None = None,
    on_settle: Callable[[int, int], None] | None = None,
) -> Result:
    """Learn sigma for every (text, group) with the solver the settings name.

    Args:
        groups: The Phi to explain, each with its regularisation.
        x: Word embeddings ``(B, T, K)``.
        real: True for real tokens ``(B, T)``; padding is never perturbed nor counted.
        settings: Optimiser settings.
        keys: One integer per group (e.g. its layer number) that names its noise stream;
            default ``0..G-1``.
        on_settle: ``on_settle(group, iterations)`` as every text of a group has settled
            (fixed-point solver).
    """
    problem = Problem(groups, x, real, settings, range(len(groups)) if keys is None else keys)
    param0, chosen = problem.start()
    if settings.solver == "fixed-point":
        log_sigma, steps, start_loss, curve, _, se, settled, up = solve_fixed_point(
            problem.losses, problem.noise, param0, real, settings, problem.upper, on_settle
        )
        retry, start = problem.drowned(log_sigma)
        if bool(retry.any()):  # trapped where every token drowns Phi: solve those pairs again
            again, more, _, curve_more, _, se_more, settled_more, up_more = solve_fixed_point(
                problem.losses, problem.noise, start, real, settings, problem.upper,
                only=retry,
            )  # fmt: skip
            # the second answer replaces the first only where its loss is lower
            first = problem.loss_samples(problem.clamp(log_sigma), retry)
            second = problem.loss_samples(problem.clamp(again), retry)
            retry &= (second - first).mean(-1) < 0
            log_sigma = torch.where(retry.unsqueeze(-1), again, log_sigma)
            se = torch.where(retry.unsqueeze(-1), se_more, se)
            settled = torch.where(retry, settled_more, settled)
            up = torch.where(retry.unsqueeze(-1), up_more, up)
            steps = steps + more
            curve = curve + curve_more
    else:
        log_sigma, steps, start_loss, curve, _ = solve_adam(problem, param0)
        # a fixed step count (tol 0, the reference's schedule) is settled by design
        se, settled, up = None, (steps < settings.max_steps) | (settings.tolerance == 0), None
    if not problem.bounded:
        log_sigma = problem.clamp(log_sigma)
        if up is not None:  # a token whose estimate points to the bound goes there if it pays
            log_sigma = problem.confirm_below(log_sigma, up)
        # a token at the bound stays there only where the loss says so
        confirmed, saturated = problem.confirm_saturation(log_sigma, problem.clamp(param0))
        if se is not None:  # a token brought back has no standard error of its own
            se = torch.where(confirmed != log_sigma, torch.full_like(se, math.inf), se)
        log_sigma = confirmed
    else:
        saturated = problem.saturated(log_sigma)
    loss, loss_se = problem.loss_at(log_sigma)
    result = make_result(
        log_sigma, problem.real_g, problem.dim, loss, steps, start_loss, curve, chosen
    )
    if se is not None:
        se = se.masked_fill(~problem.real_g, math.nan)
    return dataclasses.replace(
        result, loss_se=loss_se, log_sigma_se=se, saturated=saturated, settled=settled
    )

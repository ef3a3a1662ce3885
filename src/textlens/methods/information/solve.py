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
        log_sigma, steps, start_loss, curve, _, se = solve_fixed_point(
            problem.losses, problem.noise, param0, real, settings, problem.upper, on_settle
        )
    else:
        log_sigma, steps, start_loss, curve, _ = solve_adam(problem, param0)
        se = None
    if not problem.bounded:
        log_sigma = problem.clamp(log_sigma)
    loss, loss_se = problem.loss_at(log_sigma)
    result = make_result(
        log_sigma, problem.real_g, problem.dim, loss, steps, start_loss, curve, chosen
    )
    if se is not None:
        se = se.masked_fill(~problem.real_g, math.nan)
    saturated = problem.saturated(log_sigma)
    return dataclasses.replace(result, loss_se=loss_se, log_sigma_se=se, saturated=saturated)

"""Memory: estimate what a method's settings need before running, and refuse what cannot fit.

Every method defines ``memory_bytes(model, batch) -> int`` (its peak memory for that batch,
roughly; the registry refuses a method without one) and names the setting that scales it in
``memory_setting`` (default: its ``cost_setting``); ``check_memory`` compares the estimate with
the memory free on the device and refuses in one line, naming the largest value of that setting
that fits.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from textlens.errors import TextlensError

HEADROOM = 0.8
"""Share of the free memory a run may plan to use."""
GIB = 2**30


class ResourceError(TextlensError):
    """The settings need more memory than the machine has free."""


def available_bytes(device: Any = "cpu") -> int:
    """Memory free on ``device`` now (CPU: ``MemAvailable``; CUDA: the driver's free memory)."""
    if str(device).startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_memory(method: Any, model: Any, batch: Any, available: int | None = None) -> None:
    """Refuse settings whose estimated memory for ``batch`` is more than the device has free."""
    estimate = getattr(method, "memory_bytes", None)
    if estimate is None:
        return
    need = int(estimate(model, batch))
    free = available_bytes(model.device) if available is None else available
    budget = int(free * HEADROOM)
    if need <= budget:
        return
    setting = getattr(method, "memory_setting", None) or getattr(method, "cost_setting", None)
    if setting:
        largest = _largest_fitting(method, model, batch, setting, budget)
        hint = (
            f"; the largest {setting} that fits is {largest}"
            if largest
            else f"; even {setting}=1 does not fit: use a shorter text or fewer texts per batch"
        )
        what = f"{method.name} with {setting}={getattr(method, setting, '?')}"
    else:
        hint = "; use a shorter text or fewer texts per batch"
        what = method.name
    raise ResourceError(
        f"{what} needs about {need / GIB:.1f} GiB for this batch, and this machine has "
        f"{free / GIB:.1f} GiB free{hint}"
    )


def _range(method: Any, setting: str) -> Any:
    from textlens.methods.settings import range_of

    return range_of(type(method), setting)


def _largest_fitting(method: Any, model: Any, batch: Any, setting: str, budget: int) -> int:
    """The largest value of ``setting`` (up to its current one) whose estimate fits."""
    current = getattr(method, setting)
    if current is None:  # the method's own default: search up to the setting's cap
        bounds = _range(method, setting)
        current = int(bounds.cap) if bounds is not None and bounds.cap else 1024
    low, high = 0, int(current)
    while low < high:
        middle = (low + high + 1) // 2
        trial = dataclasses.replace(method, **{setting: middle})
        if trial.memory_bytes(model, batch) <= budget:
            low = middle
        else:
            high = middle - 1
    return low

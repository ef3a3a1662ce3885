"""Memory: estimate what a method's settings need before running, and refuse what cannot fit.

Every method defines ``memory_bytes(model, batch) -> int`` (its peak memory for that batch,
roughly; the registry refuses a method without one) and names the setting that scales it in
``memory_setting`` (default: its ``cost_setting``); ``check_memory`` compares the estimate with
the memory free on the device and refuses in one line, naming the largest value of that setting
that fits.

``max_memory`` (``memory_limit``) replaces the free memory as the budget. ``planned`` runs a
method within the budget: as it is when its estimate fits, with gradient checkpointing
(``checkpointed`` on the adapter: each block keeps only its input and recomputes the rest in the
backward pass) when only that fits, and refuses otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textlens.errors import TextlensError

HEADROOM = 0.8
"""Share of the free memory a run may plan to use."""
GIB = 2**30


class ResourceError(TextlensError):
    """The settings need more memory than the machine has free."""


_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "textlens_max_memory", default=None
)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_memory(value: Any) -> int | None:
    """``max_memory`` as bytes: a whole number of bytes, or text with a unit such as
    ``"16GiB"``, ``"512MB"`` or ``"1.5G"`` (binary units either way); None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TextlensError(f"max_memory={value!r} is not valid: give bytes or e.g. '16GiB'")
    if isinstance(value, str):
        found = re.fullmatch(
            r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])i?b?|(b))\s*", value, re.IGNORECASE
        )
        if not found:
            raise TextlensError(
                f"max_memory={value!r} is not valid: give a size with its unit, such as '16GiB' "
                "or '512MB'"
            )
        unit = (found.group(2) or "").lower()
        value = float(found.group(1)) * _UNITS[unit]
    if not value >= 1:
        raise TextlensError(f"max_memory={value!r} is not valid: give a size above 0, e.g. '4GiB'")
    return int(value)


@contextlib.contextmanager
def memory_limit(value: Any) -> Iterator[None]:
    """Within the block, plan runs for at most ``value`` bytes (``parse_memory``) instead of the
    memory free on the device; None keeps the limit already in force."""
    limit = parse_memory(value)
    if limit is None:
        yield
        return
    token = _LIMIT.set(limit)
    try:
        yield
    finally:
        _LIMIT.reset(token)


def budget_bytes(device: Any = "cpu") -> int:
    """What a run may plan to use: ``max_memory`` when one is in force, else a share
    (``HEADROOM``) of the memory free on ``device``."""
    limit = _LIMIT.get()
    return int(HEADROOM * available_bytes(device)) if limit is None else limit


def size(bytes_: float) -> str:
    """``"1.5 GiB"``, ``"300 MiB"``."""
    if bytes_ >= GIB:
        return f"{bytes_ / GIB:.1f} GiB"
    if bytes_ >= 2**20:
        return f"{bytes_ / 2**20:.0f} MiB"
    if bytes_ >= 2**10:
        return f"{bytes_ / 2**10:.0f} KiB"
    return f"{bytes_:.0f} B"


def _budget_words(device: Any) -> str:
    limit = _LIMIT.get()
    if limit is not None:
        return f"max_memory is {size(limit)}"
    return f"this machine has {available_bytes(device) / GIB:.1f} GiB free"


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


def estimate_bytes(method: Any, model: Any, batch: Any) -> int | None:
    """The method's memory estimate for ``batch`` (None when it gives none)."""
    estimate = getattr(method, "memory_bytes", None)
    return None if estimate is None else int(estimate(model, batch))


def check_memory(method: Any, model: Any, batch: Any, available: int | None = None) -> None:
    """Refuse settings whose estimated memory for ``batch`` is more than the budget
    (``budget_bytes``; ``available``: this many bytes free instead)."""
    need = estimate_bytes(method, model, batch)
    if need is None:
        return
    budget = budget_bytes(model.device) if available is None else int(available * HEADROOM)
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
    room = (
        f"this machine has {available / GIB:.1f} GiB free"
        if available is not None
        else _budget_words(model.device)
    )
    raise ResourceError(f"{what} needs about {size(need)} for this batch, and {room}{hint}")


def plan_checkpointing(method: Any, model: Any, batch: Any) -> bool:
    """Whether ``method`` should run ``batch`` with gradient checkpointing: only when its plain
    estimate is over the budget and the checkpointed one is lower. Refuses (``check_memory``)
    when neither fits."""
    need = estimate_bytes(method, model, batch)
    budget = budget_bytes(model.device)
    if need is None or need <= budget:
        return False
    if getattr(model, "can_checkpoint", False) and not getattr(model, "checkpointing", False):
        with model.checkpointed():
            lower = estimate_bytes(method, model, batch)
            if lower is not None and lower < need:
                check_memory(method, model, batch)
                return True
    check_memory(method, model, batch)
    return False


def fits(method: Any, model: Any, batch: Any, checkpointing: bool = True) -> bool:
    """Whether ``method`` can run ``batch`` within the budget: as it is, or (``checkpointing``)
    with gradient checkpointing if need be."""
    if not checkpointing:
        need = estimate_bytes(method, model, batch)
        return need is None or need <= budget_bytes(model.device)
    try:
        plan_checkpointing(method, model, batch)
    except ResourceError:
        return False
    return True


@contextlib.contextmanager
def planned(method: Any, model: Any, batch: Any) -> Iterator[bool]:
    """Run the block within the memory budget: as it is, with gradient checkpointing when only
    that fits (yields True then), or not at all (``ResourceError``, before anything runs)."""
    if plan_checkpointing(method, model, batch):
        with model.checkpointed():
            yield True
    else:
        yield False


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

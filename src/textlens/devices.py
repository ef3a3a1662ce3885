"""Devices: which names textlens accepts, and which of them this machine has."""

from __future__ import annotations

import re
from typing import Any

from textlens.errors import TextlensError

_NAME = re.compile(r"^(cpu|cuda|mps)(:\d+)?$")


def check_device_name(device: Any) -> str:
    """Refuse a device that is not ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (no torch needed)."""
    text = str(device).strip().lower()
    if not _NAME.match(text):
        raise TextlensError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps")
    return text


def available_devices() -> list[str]:
    """The devices torch can use on this machine, ``cpu`` first."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(device: Any) -> Any:
    """A ``torch.device`` that exists on this machine, or one line saying which ones do."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    text = check_device_name(device)
    chosen = torch.device(text)
    have = available_devices()
    if chosen.type == "cpu":
        return chosen
    wanted = text if chosen.index is not None or chosen.type == "mps" else f"{chosen.type}:0"
    if wanted not in have:
        raise TextlensError(
            f"device {text!r} is not available on this machine; available: {', '.join(have)}"
        )
    return chosen

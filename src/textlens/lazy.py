"""Torch, imported on first use.

The method classes (their settings, ranges and descriptions) are read by the command line to
answer ``--help``, ``textlens methods`` and argument errors. Importing torch takes seconds, so
the modules those classes live in refer to torch through this stand-in, which imports the real
module the first time one of its attributes is used (that is, when there is work to do).
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """A module that is imported when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._loaded: types.ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "_loaded":
            raise AttributeError(attr)
        if self._loaded is None:
            self._loaded = importlib.import_module(self.__name__)
        return getattr(self._loaded, attr)


torch: Any = LazyModule("torch")


def exports(package: str, names: dict[str, str]) -> tuple[Any, Any]:
    """A package's ``__getattr__`` and ``__dir__`` that import each name from its module on
    first use (``names``: name -> module), so that importing the package stays cheap."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__

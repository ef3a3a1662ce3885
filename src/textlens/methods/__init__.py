"""Attribution methods: one module each, all registered in ``textlens.methods.registry``.

Importing this package imports every method module in it, each of which registers its methods;
the registry's names are re-exported here.
"""

from __future__ import annotations

import importlib
import pkgutil

from textlens.explanation import settings_of
from textlens.methods.base import Method, Scores
from textlens.methods.registry import (
    DEFAULT_METHOD,
    METHODS,
    build_method,
    describe_methods,
    get_method,
    local_settings,
    parse_layers,
    parse_setting,
    parse_settings,
    providers,
    register,
    work_caps,
)

SUPPORT_MODULES = ("base", "baseline", "registry", "settings")
"""Modules of this package that hold no method; every other module registers one or more."""


def _import_method_modules() -> None:
    """Import every method module of this package: each registers its methods (``@register``).

    A new method is one new module here; nothing else needs to list it.
    """
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name not in SUPPORT_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_method_modules()

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "Method",
    "Scores",
    "build_method",
    "describe_methods",
    "get_method",
    "local_settings",
    "parse_layers",
    "parse_setting",
    "parse_settings",
    "providers",
    "register",
    "settings_of",
    "work_caps",
]

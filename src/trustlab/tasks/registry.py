"""The registry of task kinds, and plug-in modules that add more."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from trustlab.core.errors import ConfigurationError
from trustlab.core.registry import Registry
from trustlab.tasks.base import TaskKind

TASK_KINDS: Registry[TaskKind] = Registry("task kind")

MSG_PLUGIN = (
    "Cannot import task plug-in module {module!r}: {error}. Check TRUSTLAB_PLUGINS "
    "(a comma-separated list of importable module names)."
)


def register_kind(cls: type[TaskKind]) -> type[TaskKind]:
    """Class decorator: register one instance of a :class:`TaskKind` under ``cls.name``."""
    TASK_KINDS.add(cls.name, cls())
    return cls


def get_kind(name: str) -> TaskKind:
    _load_builtin()
    return TASK_KINDS.get(name)


def list_kinds() -> list[str]:
    _load_builtin()
    return TASK_KINDS.names()


def load_plugins(modules: Iterable[str]) -> None:
    """Import modules that register extra task kinds (course-specific challenges)."""
    for module in modules:
        module = module.strip()
        if not module:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(MSG_PLUGIN.format(module=module, error=exc)) from None


# The modules of the built-in kinds, imported on first use of the registry.
BUILTIN_MODULES: tuple[str, ...] = (
    "trustlab.tasks.membership",
    "trustlab.tasks.fairness",
    "trustlab.tasks.extraction",
    "trustlab.tasks.robustness",
    "trustlab.tasks.membership_defence",
    "trustlab.tasks.explanation",
    "trustlab.tasks.ood_detection",
    "trustlab.tasks.conformal",
)

_BUILTIN_LOADED = False


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)

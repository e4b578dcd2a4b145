"""Attacks by name: ``get_attack("pgd")`` and ``make_attack("pgd", norm="Linf", eps=0.03)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from trustlab.core.registry import Registry
from trustlab.robustness.base import Attack

A = TypeVar("A", bound=type[Attack])

ATTACKS: Registry[type[Attack]] = Registry("attack")


def register_attack(cls: A) -> A:
    """Class decorator: register an :class:`Attack` subclass under ``cls.name``."""
    ATTACKS.add(cls.name, cls)
    return cls


def get_attack(name: str) -> type[Attack]:
    """The attack class registered as ``name`` (UnknownNameError lists the known names)."""
    return ATTACKS.get(name)


def list_attacks() -> list[str]:
    return ATTACKS.names()


def make_attack(name: str, *, options: dict[str, Any] | None = None) -> Attack:
    """An attack built from its name and keyword options (e.g. from a task's YAML)."""
    factory: Callable[..., Attack] = get_attack(name)
    return factory(**(options or {}))

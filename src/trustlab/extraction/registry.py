"""The registry of extraction attacks, by name.

Each attack module registers its class with :func:`register_attack`; :func:`build_attack`
makes one from a name and keyword options (a task's YAML spec, a benchmark's table).

Examples
--------
>>> import torch
>>> import trustlab.extraction  # registers the library's attacks
>>> build_attack("distillation", {"query_x": torch.zeros(4, 2), "epochs": 2})
Distillation(epochs=2, lr=0.001, batch_size=64, seed=0, embedding_loss='mse')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from trustlab.core.registry import Registry
from trustlab.extraction.base import ExtractionAttack

__all__ = ["EXTRACTION_ATTACKS", "build_attack", "register_attack"]

#: Extraction attack classes by name.
EXTRACTION_ATTACKS: Registry[Callable[..., ExtractionAttack]] = Registry("extraction attack")

_Attack = TypeVar("_Attack", bound=Callable[..., ExtractionAttack])


def register_attack(name: str) -> Callable[[_Attack], _Attack]:
    """Decorator: register an :class:`ExtractionAttack` subclass under ``name``."""

    def decorator(cls: _Attack) -> _Attack:
        EXTRACTION_ATTACKS.add(name, cls)
        return cls

    return decorator


def build_attack(name: str, options: Mapping[str, Any] | None = None) -> ExtractionAttack:
    """The extraction attack ``name`` built with keyword ``options``.

    Raises
    ------
    UnknownNameError
        If no attack has that name (the message lists the known ones).
    ConfigurationError
        If an option is unknown or a value is invalid.
    """
    attack: ExtractionAttack = EXTRACTION_ATTACKS.build(name, options)
    return attack

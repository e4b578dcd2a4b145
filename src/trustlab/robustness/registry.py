"""Attacks and adversarial training methods by name.

``make_attack("pgd", options={"norm": "Linf", "eps": 0.03})`` and
``make_trainer("trades", options={"eps": 0.03})`` build a member from a task's YAML spec;
the conformance tests walk every registered member.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from trustlab.core.registry import Registry
from trustlab.robustness.base import Attack

if TYPE_CHECKING:
    from trustlab.robustness.training.base import AdversarialTrainer

__all__ = [
    "ATTACKS",
    "TRAINERS",
    "get_attack",
    "get_trainer",
    "list_attacks",
    "list_trainers",
    "make_attack",
    "make_trainer",
    "register_attack",
    "register_trainer",
]

A = TypeVar("A", bound=type[Attack])
T = TypeVar("T", bound="type[AdversarialTrainer]")

#: Evasion attacks, by their ``name``.
ATTACKS: Registry[type[Attack]] = Registry("attack")
#: Adversarial training methods, by their ``name``.
TRAINERS: Registry[type[AdversarialTrainer]] = Registry("adversarial training method")


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
    """An attack built from its name and keyword options (e.g. from a task's YAML).

    An unknown option raises :class:`~trustlab.core.errors.ConfigurationError` listing the
    accepted ones; a bad value, the attack's own parameter message.
    """
    return cast(Attack, ATTACKS.build(name, options))


def register_trainer(cls: T) -> T:
    """Class decorator: register an adversarial training method under ``cls.name``."""
    TRAINERS.add(cls.name, cls)
    return cls


def get_trainer(name: str) -> type[AdversarialTrainer]:
    """The adversarial training method registered as ``name``."""
    return TRAINERS.get(name)


def list_trainers() -> list[str]:
    return TRAINERS.names()


def make_trainer(name: str, *, options: dict[str, Any] | None = None) -> AdversarialTrainer:
    """An adversarial training method built from its name and keyword options."""
    return cast("AdversarialTrainer", TRAINERS.build(name, options))

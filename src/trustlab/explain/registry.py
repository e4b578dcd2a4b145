"""Attribution methods by name.

``make_explainer("occlusion", options={"window": 4})`` builds a method from data (a task spec
or :func:`trustlab.explain.explain`'s keyword options); the conformance tests walk every
registered member.
"""

from __future__ import annotations

from typing import Any, TypeVar

from trustlab.core.registry import Registry
from trustlab.explain.base import Explainer

__all__ = [
    "EXPLAINERS",
    "get_explainer",
    "list_explainers",
    "make_explainer",
    "register_explainer",
]

E = TypeVar("E", bound=type[Explainer])

#: Attribution methods, by their ``name``.
EXPLAINERS: Registry[type[Explainer]] = Registry("attribution method")


def register_explainer(cls: E) -> E:
    """Class decorator: register an :class:`Explainer` subclass under ``cls.name``."""
    EXPLAINERS.add(cls.name, cls)
    return cls


def get_explainer(name: str) -> type[Explainer]:
    """The method registered as ``name`` (UnknownNameError lists the known names)."""
    return EXPLAINERS.get(name)


def list_explainers() -> list[str]:
    """The registered method names, sorted."""
    return EXPLAINERS.names()


def make_explainer(name: str, *, options: dict[str, Any] | None = None) -> Explainer:
    """A method built from its name and keyword options.

    An unknown option raises :class:`~trustlab.core.errors.ConfigurationError` listing the
    accepted ones; a bad value, the method's own parameter message.
    """
    explainer: Explainer = EXPLAINERS.build(name, options)
    return explainer

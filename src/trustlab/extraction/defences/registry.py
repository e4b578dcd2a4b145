"""The registries of extraction defences: output defences and query detectors, by name.

A task's YAML spec names a defence as ``{name: rounding, options: {decimals: 2}}``;
:func:`build_defence` turns that into an :class:`OutputDefence`, and :func:`build_detector`
does the same for a :class:`QueryDetector`. Each defence module registers its class with
:func:`register_defence` or :func:`register_detector`.

Examples
--------
>>> import trustlab.extraction  # registers the library's defences
>>> build_defence("rounding", {"decimals": 1})
Rounding(decimals=1)
>>> build_defence({"name": "chain", "options": {"defences": ["top-k", "rounding"]}})
Chain(TopK(k=1, renormalise=False), Rounding(decimals=2))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, TypeVar

from trustlab.core.errors import ConfigurationError
from trustlab.core.registry import Registry
from trustlab.extraction.defences.base import OutputDefence, QueryDetector

__all__ = [
    "DEFENCES",
    "DETECTORS",
    "MSG_SPEC",
    "DefenceSpec",
    "build_defence",
    "build_detector",
    "register_defence",
    "register_detector",
]

#: A defence named in a spec: its registered name, or ``{"name": ..., "options": {...}}``.
DefenceSpec: TypeAlias = str | Mapping[str, Any]

MSG_SPEC = (
    "A {kind} must be given as its registered name or as a mapping {{'name': ..., 'options': "
    "{{...}}}}. Got {value!r} instead."
)
MSG_SPEC_OPTIONS_TWICE = (
    "The {kind} {name!r} got options twice: inside its spec and as the options argument; "
    "pass them once."
)

#: Output defences (:class:`OutputDefence` factories) by name.
DEFENCES: Registry[Callable[..., OutputDefence]] = Registry("output defence")
#: Query detectors (:class:`QueryDetector` classes) by name.
DETECTORS: Registry[Callable[..., QueryDetector]] = Registry("query detector")

_Defence = TypeVar("_Defence", bound=Callable[..., OutputDefence])
_Detector = TypeVar("_Detector", bound=Callable[..., QueryDetector])


def register_defence(name: str) -> Callable[[_Defence], _Defence]:
    """Decorator: register an output defence class (or factory) under ``name``."""

    def decorator(factory: _Defence) -> _Defence:
        DEFENCES.add(name, factory)
        return factory

    return decorator


def register_detector(name: str) -> Callable[[_Detector], _Detector]:
    """Decorator: register a query detector class under ``name``."""

    def decorator(factory: _Detector) -> _Detector:
        DETECTORS.add(name, factory)
        return factory

    return decorator


def _name_and_options(
    spec: object, options: Mapping[str, Any] | None, *, kind: str
) -> tuple[str, Mapping[str, Any] | None]:
    if isinstance(spec, str):
        return spec, options
    if (
        not isinstance(spec, Mapping)
        or not isinstance(spec.get("name"), str)
        or not set(spec) <= {"name", "options"}
    ):
        raise ConfigurationError(MSG_SPEC.format(kind=kind, value=spec))
    name: str = spec["name"]
    if "options" in spec and options is not None:
        raise ConfigurationError(MSG_SPEC_OPTIONS_TWICE.format(kind=kind, name=name))
    return name, spec.get("options", options)


def build_defence(spec: DefenceSpec, options: Mapping[str, Any] | None = None) -> OutputDefence:
    """The output defence a spec names, built with its options and checked.

    Parameters
    ----------
    spec : str or Mapping
        A registered name (see ``DEFENCES.names()``), or ``{"name": ..., "options": {...}}``.
    options : Mapping, optional
        Keyword arguments of the defence, when ``spec`` is a name.

    Returns
    -------
    OutputDefence

    Raises
    ------
    UnknownNameError
        If no defence has that name (the message lists the known ones).
    ConfigurationError
        If the spec is malformed, an option is unknown, or a value is invalid.

    Examples
    --------
    >>> import trustlab.extraction
    >>> build_defence("top-k", {"k": 2})
    TopK(k=2, renormalise=False)
    """
    name, given = _name_and_options(spec, options, kind=DEFENCES.kind)
    defence: OutputDefence = DEFENCES.build(name, given)
    return defence


def build_detector(spec: DefenceSpec, options: Mapping[str, Any] | None = None) -> QueryDetector:
    """The query detector a spec names (``"prada"``, ...), built with its options.

    Takes the same forms of ``spec`` as :func:`build_defence`.

    Examples
    --------
    >>> import trustlab.extraction
    >>> build_detector("prada", {"min_queries": 50})
    PRADA(threshold=0.9, min_queries=50)
    """
    name, given = _name_and_options(spec, options, kind=DETECTORS.kind)
    detector: QueryDetector = DETECTORS.build(name, given)
    return detector

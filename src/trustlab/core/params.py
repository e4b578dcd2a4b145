"""Declared parameter constraints, checked in one place with one message format.

Every public class of trustlab that takes hyperparameters declares them once, as a table of
constraints, and checks them **at construction**: ``__init__`` stores the arguments as given and
ends with :func:`validate_params`, which replaces each stored value by its checked, normalised
form (an ``int`` for a NumPy integer, a :class:`float` for an int given to a real parameter, a
tuple for a pair). A wrong value fails at once, where the user wrote it, with one message shape:

    The 'eps' parameter of PGD must be a finite float > 0. Got -3 instead.

Functions that take hyperparameters (``fit_classifier``, ...) call :func:`check_param` for each
argument with the function's name as the owner.

Examples
--------
>>> class Smoother:
...     _parameter_constraints = {"sigma": Real(low=0, closed="neither"), "n": Integer(low=1)}
...
...     def __init__(self, *, sigma: float = 0.25, n: int = 100) -> None:
...         self.sigma = sigma
...         self.n = n
...         validate_params(self)
>>> Smoother(n=10).n
10
>>> try:
...     Smoother(sigma=-1)
... except ConfigurationError as err:
...     print(err)
The 'sigma' parameter of Smoother must be a finite float > 0. Got -1 instead.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trustlab.core.errors import ConfigurationError

__all__ = [
    "MAX_SEED",
    "MSG_PARAM",
    "Boolean",
    "Bounds",
    "Constraint",
    "Enum",
    "InstanceOf",
    "IntList",
    "Integer",
    "NonEmptyStr",
    "Optional",
    "Options",
    "Real",
    "Satisfies",
    "Seed",
    "check_param",
    "parameter_constraints",
    "store_params",
    "validate_params",
]

#: The one message every failed check uses.
MSG_PARAM = "The {name!r} parameter of {owner} must be {rule}. Got {value!r} instead."

#: The largest seed NumPy and torch both accept.
MAX_SEED = 2**32 - 1

Closed = Literal["both", "left", "right", "neither"]


class _Invalid(Exception):
    """Raised by a constraint's ``_convert`` when the value does not satisfy it."""


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _fmt(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


class Constraint(abc.ABC):
    """One rule a parameter must satisfy: a description for the message and a conversion."""

    @property
    @abc.abstractmethod
    def rule(self) -> str:
        """What the value must be, completing "The 'x' parameter of Y must be ..."."""

    @abc.abstractmethod
    def _convert(self, value: object) -> Any:
        """The checked, normalised value; raise :class:`_Invalid` when it does not fit."""

    def check(self, value: object, *, name: str, owner: str) -> Any:
        """Return ``value`` checked and normalised, or raise :class:`ConfigurationError`."""
        try:
            return self._convert(value)
        except _Invalid:
            raise ConfigurationError(
                MSG_PARAM.format(name=name, owner=owner, rule=self.rule, value=value)
            ) from None


def _interval_rule(low: float | None, high: float | None, closed: Closed) -> str:
    left_closed = closed in ("both", "left")
    right_closed = closed in ("both", "right")
    if low is not None and high is not None:
        left, right = ("[" if left_closed else "("), ("]" if right_closed else ")")
        return f"in {left}{_fmt(low)}, {_fmt(high)}{right}"
    if low is not None:
        return f"{'>=' if left_closed else '>'} {_fmt(low)}"
    if high is not None:
        return f"{'<=' if right_closed else '<'} {_fmt(high)}"
    return ""


def _inside(number: float, low: float | None, high: float | None, closed: Closed) -> bool:
    if low is not None and (number < low or (number == low and closed in ("right", "neither"))):
        return False
    return not (
        high is not None and (number > high or (number == high and closed in ("left", "neither")))
    )


@dataclass(frozen=True)
class Integer(Constraint):
    """An int (bools refused) in an interval; NumPy integers become ``int``."""

    low: int | None = None
    high: int | None = None
    closed: Closed = "both"

    @property
    def rule(self) -> str:
        bounds = _interval_rule(self.low, self.high, self.closed)
        return f"an int {bounds}".rstrip()

    def _convert(self, value: object) -> int:
        if not _is_int(value) or not _inside(int(value), self.low, self.high, self.closed):  # type: ignore[call-overload]
            raise _Invalid
        return int(value)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Real(Constraint):
    """A finite real number (ints accepted, bools refused) in an interval, as ``float``."""

    low: float | None = None
    high: float | None = None
    closed: Closed = "both"

    @property
    def rule(self) -> str:
        bounds = _interval_rule(self.low, self.high, self.closed)
        return f"a finite float {bounds}".rstrip()

    def _convert(self, value: object) -> float:
        if not _is_real(value):
            raise _Invalid
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number) or not _inside(number, self.low, self.high, self.closed):
            raise _Invalid
        return number


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (NumPy bools become ``bool``; 0 and 1 are refused)."""

    @property
    def rule(self) -> str:
        return "a bool"

    def _convert(self, value: object) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise _Invalid
        return bool(value)


@dataclass(frozen=True, init=False)
class Options(Constraint):
    """One of a fixed set of values (strings, numbers or None)."""

    choices: tuple[object, ...]

    def __init__(self, *choices: object) -> None:
        object.__setattr__(self, "choices", tuple(choices))

    @property
    def rule(self) -> str:
        return "one of " + ", ".join(repr(choice) for choice in self.choices)

    def _convert(self, value: object) -> object:
        for choice in self.choices:
            if type(value) is type(choice) and value == choice:
                return choice
        raise _Invalid


@dataclass(frozen=True)
class Enum(Constraint):
    """A member of an :class:`enum.Enum`, given as the member or its value (case-insensitive).

    ``allowed`` narrows the accepted members.
    """

    enum_type: type[enum.Enum]
    allowed: tuple[enum.Enum, ...] | None = None

    @property
    def rule(self) -> str:
        members = self.allowed or tuple(self.enum_type)
        return "one of " + ", ".join(repr(member.value) for member in members)

    def _convert(self, value: object) -> enum.Enum:
        members = self.allowed or tuple(self.enum_type)
        for member in members:
            if value is member:
                return member
            if isinstance(value, str) and isinstance(member.value, str):
                if value.lower() == member.value.lower():
                    return member
            elif type(value) is type(member.value) and value == member.value:
                return member
        raise _Invalid


@dataclass(frozen=True)
class NonEmptyStr(Constraint):
    """A non-empty ``str``."""

    @property
    def rule(self) -> str:
        return "a non-empty str"

    def _convert(self, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise _Invalid
        return value


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of one of ``types``, described to the user as ``what``."""

    types: type | tuple[type, ...]
    what: str

    @property
    def rule(self) -> str:
        return self.what

    def _convert(self, value: object) -> object:
        if not isinstance(value, self.types):
            raise _Invalid
        return value


@dataclass(frozen=True)
class Satisfies(Constraint):
    """Any value for which ``convert`` returns without raising ``ValueError`` or ``TypeError``.

    ``convert`` returns the normalised value; ``what`` describes the rule.
    """

    convert: Callable[[object], object]
    what: str

    @property
    def rule(self) -> str:
        return self.what

    def _convert(self, value: object) -> object:
        try:
            return self.convert(value)
        except (TypeError, ValueError):
            raise _Invalid from None


@dataclass(frozen=True)
class Optional(Constraint):
    """``None``, or a value that satisfies ``inner``."""

    inner: Constraint

    @property
    def rule(self) -> str:
        return f"None or {self.inner.rule}"

    def _convert(self, value: object) -> object:
        if value is None:
            return None
        return self.inner._convert(value)


@dataclass(frozen=True)
class Bounds(Constraint):
    """A pair ``(low, high)`` of finite numbers with ``low < high``, as a tuple of floats."""

    @property
    def rule(self) -> str:
        return "a pair (low, high) of finite numbers with low < high"

    def _convert(self, value: object) -> tuple[float, float]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            raise _Invalid
        if len(value) != 2 or not all(_is_real(item) for item in value):
            raise _Invalid
        low, high = float(value[0]), float(value[1])
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise _Invalid
        return low, high


@dataclass(frozen=True)
class IntList(Constraint):
    """A list (or tuple) of ints, each ``>= low``, as a ``list[int]``; ``min_length`` items."""

    low: int = 1
    min_length: int = 0

    @property
    def rule(self) -> str:
        size = f"at least {self.min_length} " if self.min_length else ""
        return f"a list of {size}ints >= {self.low}"

    def _convert(self, value: object) -> list[int]:
        if not isinstance(value, (list, tuple)) or len(value) < self.min_length:
            raise _Invalid
        if not all(_is_int(item) and int(item) >= self.low for item in value):
            raise _Invalid
        return [int(item) for item in value]


#: A seed NumPy and torch both accept.
Seed = Integer(low=0, high=MAX_SEED)


def check_param(value: object, constraint: Constraint, *, name: str, owner: str) -> Any:
    """Check one parameter against ``constraint`` and return its normalised value.

    Parameters
    ----------
    value : object
        The value the user gave.
    constraint : Constraint
        The rule it must satisfy.
    name : str
        The parameter's name, as the user wrote it.
    owner : str
        The class or function the parameter belongs to.

    Raises
    ------
    ConfigurationError
        With :data:`MSG_PARAM`, naming the parameter, its owner, the rule and the value.

    Examples
    --------
    >>> check_param(3, Integer(low=1), name="epochs", owner="fit_classifier")
    3
    """
    return constraint.check(value, name=name, owner=owner)


def store_params(obj: object, **given: object) -> None:
    """Store ``__init__``'s arguments on ``obj`` as given, each under its own name.

    Call :func:`validate_params` right after: it replaces each value by its checked, normalised
    form (a ``str`` norm becomes an enum member, a list of bounds a tuple of floats), so the
    attributes have their declared types once ``__init__`` returns, and a type checker need
    not see the raw arguments assigned to attributes of the normalised type.

    Examples
    --------
    >>> class Attack:
    ...     _parameter_constraints = {"steps": Integer(low=1)}
    ...
    ...     def __init__(self, *, steps: int = 10) -> None:
    ...         store_params(self, steps=steps)
    ...         validate_params(self)
    >>> Attack(steps=3).steps
    3
    """
    for name, value in given.items():
        setattr(obj, name, value)


def validate_params(
    obj: object,
    constraints: Mapping[str, Constraint] | None = None,
    *,
    owner: str | None = None,
) -> None:
    """Check the parameters ``obj`` stored in ``__init__`` and store their normalised values.

    Parameters
    ----------
    obj : object
        An instance whose attributes named in the table hold the values the user gave.
    constraints : Mapping[str, Constraint], optional
        The table; by default the merged ``_parameter_constraints`` of ``type(obj)`` and its
        bases (a subclass's entry overrides its base's).
    owner : str, optional
        The name in messages; by default the class name.

    Raises
    ------
    ConfigurationError
        For the first parameter, in table order, that fails its constraint; nothing is
        modified in that case.
    """
    table = dict(constraints) if constraints is not None else parameter_constraints(type(obj))
    who = owner or type(obj).__name__
    checked = {
        name: constraint.check(getattr(obj, name), name=name, owner=who)
        for name, constraint in table.items()
    }
    for name, value in checked.items():
        setattr(obj, name, value)


def parameter_constraints(cls: type) -> dict[str, Constraint]:
    """The merged ``_parameter_constraints`` of ``cls`` and its bases, base entries first."""
    table: dict[str, Constraint] = {}
    for klass in reversed(cls.__mro__):
        table.update(klass.__dict__.get("_parameter_constraints", None) or {})
    return table

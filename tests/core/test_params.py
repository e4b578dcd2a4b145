"""The declared parameter constraints every class of trustlab checks at construction."""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import (
    MSG_PARAM,
    Boolean,
    Bounds,
    Constraint,
    Enum,
    InstanceOf,
    Integer,
    IntList,
    NonEmptyStr,
    Optional,
    Options,
    Real,
    Satisfies,
    Seed,
    check_param,
    parameter_constraints,
    validate_params,
)


class Colour(str, enum.Enum):
    RED = "Red"
    BLUE = "Blue"


@pytest.mark.parametrize(
    ("constraint", "value", "expected"),
    [
        (Integer(low=1), 3, 3),
        (Integer(low=1), np.int64(3), 3),
        (Integer(low=0, high=2), 2, 2),
        (Real(low=0, closed="neither"), 2, 2.0),
        (Real(low=0, high=1), np.float32(0.5), 0.5),
        (Real(low=0, high=1, closed="left"), 0.0, 0.0),
        (Boolean(), np.bool_(True), True),
        (Options("a", "b"), "b", "b"),
        (Options(None, 1), None, None),
        (Enum(Colour), "red", Colour.RED),
        (Enum(Colour), Colour.BLUE, Colour.BLUE),
        (NonEmptyStr(), "x", "x"),
        (InstanceOf(int, "an int"), 4, 4),
        (Satisfies(lambda v: int(str(v)), "a numeric string"), "12", 12),
        (Optional(Integer(low=1)), None, None),
        (Optional(Integer(low=1)), 5, 5),
        (Bounds(), [0, 1], (0.0, 1.0)),
        (Bounds(), np.array([-1.0, 2.0]), (-1.0, 2.0)),
        (IntList(low=1), (4, 8), [4, 8]),
        (Seed, 2**32 - 1, 2**32 - 1),
    ],
)
def test_accepts_and_normalises(constraint: Constraint, value: object, expected: object) -> None:
    result = check_param(value, constraint, name="p", owner="Owner")
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("constraint", "value", "rule"),
    [
        (Integer(low=1), 0, "an int >= 1"),
        (Integer(low=1), True, "an int >= 1"),
        (Integer(low=1), 1.0, "an int >= 1"),
        (Integer(low=0, high=2, closed="left"), 2, "an int in [0, 2)"),
        (Real(low=0, closed="neither"), 0, "a finite float > 0"),
        (Real(low=0, closed="neither"), float("nan"), "a finite float > 0"),
        (Real(low=0, closed="neither"), float("inf"), "a finite float > 0"),
        (Real(low=0, high=1, closed="right"), 0.0, "a finite float in (0, 1]"),
        (Real(high=1, closed="neither"), 1.0, "a finite float < 1"),
        (Real(), "1.0", "a finite float"),
        (Real(), False, "a finite float"),
        (Boolean(), 1, "a bool"),
        (Options("a", "b"), "c", "one of 'a', 'b'"),
        (Options(1, 2), True, "one of 1, 2"),
        (Enum(Colour, allowed=(Colour.RED,)), "Blue", "one of 'Red'"),
        (NonEmptyStr(), "", "a non-empty str"),
        (InstanceOf(int, "an int"), "4", "an int"),
        (Satisfies(lambda v: int(str(v)), "a numeric string"), "x", "a numeric string"),
        (Optional(Integer(low=1)), 0, "None or an int >= 1"),
        (Bounds(), (1, 0), "a pair (low, high) of finite numbers with low < high"),
        (Bounds(), "ab", "a pair (low, high) of finite numbers with low < high"),
        (Bounds(), (0, float("inf")), "a pair (low, high) of finite numbers with low < high"),
        (IntList(low=1), [1, 0], "a list of ints >= 1"),
        (IntList(low=1, min_length=1), [], "a list of at least 1 ints >= 1"),
        (Seed, -1, "an int in [0, 4294967295]"),
    ],
)
def test_refuses_with_the_one_message(constraint: Constraint, value: object, rule: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_param(value, constraint, name="p", owner="Owner")
    assert str(info.value) == MSG_PARAM.format(name="p", owner="Owner", rule=rule, value=value)


class _Base:
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "eps": Real(low=0, closed="neither"),
        "steps": Integer(low=1),
    }

    def __init__(self, *, eps: Any = 0.1, steps: Any = 10) -> None:
        self.eps = eps
        self.steps = steps
        validate_params(self)


class _Child(_Base):
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"steps": Integer(low=5)}


def test_validate_params_normalises_in_place() -> None:
    obj = _Base(eps=1, steps=np.int32(4))
    assert obj.eps == 1.0 and isinstance(obj.eps, float)
    assert obj.steps == 4 and type(obj.steps) is int


def test_validate_params_merges_the_class_hierarchy() -> None:
    assert list(parameter_constraints(_Child)) == ["eps", "steps"]
    with pytest.raises(ConfigurationError, match="'steps' parameter of _Child must be an int >= 5"):
        _Child(steps=4)
    with pytest.raises(ConfigurationError, match="'eps' parameter of _Child"):
        _Child(eps=-1)


def test_validate_params_changes_nothing_on_failure() -> None:
    obj = _Base()
    obj.eps, obj.steps = np.float64(0.5), 0
    with pytest.raises(ConfigurationError):
        validate_params(obj)
    assert type(obj.eps) is np.float64  # the valid one was not normalised either


def test_validate_params_with_an_explicit_table_and_owner() -> None:
    obj = _Base()
    obj.eps = -2
    with pytest.raises(ConfigurationError, match="'eps' parameter of PGD"):
        validate_params(obj, {"eps": Real(low=0)}, owner="PGD")

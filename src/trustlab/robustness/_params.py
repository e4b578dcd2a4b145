"""The parameter constraints the robustness classes share.

Attacks and adversarial trainers share their threat model: ``norm``, ``eps``, ``bounds`` and
``seed`` are declared once, on :class:`ThreatModelParams`, and checked by
:func:`trustlab.core.params.validate_params` with the one message format of the library. The
``norm`` constraint follows each class's ``norms``: a subclass that narrows or widens the norms
it supports gets a matching constraint.
"""

from __future__ import annotations

from typing import Any, ClassVar

from trustlab.core.params import Bounds, Constraint, Enum, Integer, Real, Seed, store_params
from trustlab.robustness.norms import Norm

__all__ = [
    "AT_LEAST_ONE",
    "NON_NEGATIVE",
    "POSITIVE",
    "UNIT_OPEN",
    "ThreatModelParams",
    "norm_constraint",
    "store_params",
]

#: A finite float > 0.
POSITIVE = Real(low=0, closed="neither")
#: A finite float >= 0.
NON_NEGATIVE = Real(low=0)
#: An int >= 1.
AT_LEAST_ONE = Integer(low=1)
#: A finite float in (0, 1).
UNIT_OPEN = Real(low=0, high=1, closed="neither")


def norm_constraint(norms: tuple[Norm, ...]) -> Constraint:
    """The constraint of a ``norm`` parameter that accepts ``norms`` (names case-insensitive)."""
    return Enum(Norm, allowed=norms)


class ThreatModelParams:
    """Declares the threat-model parameters every attack and adversarial trainer takes.

    Subclasses list the norms they support in ``norms``; the ``norm`` constraint is derived
    from it.
    """

    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "norm": norm_constraint((Norm.LINF, Norm.L2)),
        "eps": POSITIVE,
        "bounds": Bounds(),
        "seed": Seed,
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "norms" in cls.__dict__:
            own = dict(cls.__dict__.get("_parameter_constraints", {}))
            own.setdefault("norm", norm_constraint(cls.norms))
            cls._parameter_constraints = own

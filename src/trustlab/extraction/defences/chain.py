"""Composition of output defences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch

from trustlab.core.params import Constraint, InstanceOf, Satisfies, check_param, validate_params
from trustlab.extraction.defences.base import OutputDefence
from trustlab.extraction.defences.registry import DefenceSpec, build_defence, register_defence

__all__ = ["Chain", "chain"]


def _defence_tuple(value: object) -> tuple[OutputDefence, ...]:
    if not isinstance(value, tuple) or not all(isinstance(d, OutputDefence) for d in value):
        raise TypeError
    return value


class Chain(OutputDefence):
    """Apply several output defences one after the other, left to right.

    ``Chain(a, b).apply(...)`` is ``b.apply(outputs=a.apply(...), ...)`` with the same
    ``inputs`` and ``client_id``. The chain accepts embeddings only if every member does, and
    returns probabilities if every member does; an empty chain returns the outputs unchanged.
    To build a chain from names and options (a task's spec), use :func:`chain`, which the
    registry of defences knows as ``"chain"``.

    Parameters
    ----------
    *defences : OutputDefence
        The defences, in the order they are applied.

    Examples
    --------
    >>> import torch
    >>> from trustlab.extraction.defences import Rounding, TopK
    >>> both = Chain(TopK(k=1), Rounding(decimals=1))
    >>> both.apply(outputs=torch.tensor([[0.26, 0.74]]), inputs=torch.zeros(1, 1), client_id="a")
    tensor([[0.0000, 0.7000]])
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "defences": Satisfies(
            _defence_tuple,
            "OutputDefence instances (e.g. Rounding(decimals=2)), not classes or names",
        ),
    }

    def __init__(self, *defences: OutputDefence) -> None:
        self.defences = defences
        validate_params(self)

    @property
    def probabilities_only(self) -> bool:
        return any(defence.probabilities_only for defence in self.defences)

    @property
    def returns_probabilities(self) -> bool:
        return all(defence.returns_probabilities for defence in self.defences)

    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        for defence in self.defences:
            outputs = defence.apply(outputs=outputs, inputs=inputs, client_id=client_id)
        return outputs

    def __repr__(self) -> str:
        return f"Chain({', '.join(map(repr, self.defences))})"


_DEFENCE_LIST = InstanceOf(
    (list, tuple),
    "a list of defences: OutputDefence instances, registered names or "
    "{'name': ..., 'options': {...}} mappings",
)


@register_defence("chain")
def chain(defences: Sequence[OutputDefence | DefenceSpec] = ()) -> Chain:
    """Compose ``defences`` (applied in order) into one :class:`Chain`.

    Parameters
    ----------
    defences : list
        Each an :class:`OutputDefence`, a registered name (``"rounding"``) or a spec
        ``{"name": ..., "options": {...}}``, built with
        :func:`~trustlab.extraction.defences.registry.build_defence`.

    Examples
    --------
    >>> from trustlab.extraction.defences import Rounding, TopK
    >>> chain([TopK(k=3), Rounding(decimals=2)])
    Chain(TopK(k=3, renormalise=False), Rounding(decimals=2))
    >>> chain([{"name": "top-k", "options": {"k": 3}}, "rounding"])
    Chain(TopK(k=3, renormalise=False), Rounding(decimals=2))
    """
    items = check_param(defences, _DEFENCE_LIST, name="defences", owner="chain")
    return Chain(
        *(build_defence(item) if isinstance(item, (str, Mapping)) else item for item in items)
    )

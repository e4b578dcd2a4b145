"""Composition of output defences."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from trustlab.core.errors import ConfigurationError
from trustlab.extraction.defences.base import OutputDefence

__all__ = ["Chain", "chain"]

MSG_NOT_DEFENCE = (
    "Chain takes OutputDefence instances (e.g. Rounding(decimals=2)); item {index} is "
    "{what}. Pass instances, not classes or names."
)


class Chain(OutputDefence):
    """Apply several output defences one after the other, left to right.

    ``Chain(a, b).apply(...)`` is ``b.apply(outputs=a.apply(...), ...)`` with the same
    ``inputs`` and ``client_id``. The chain accepts embeddings only if every member does; an
    empty chain returns the outputs unchanged.

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

    def __init__(self, *defences: OutputDefence) -> None:
        self.defences = tuple(defences)

    @property
    def probabilities_only(self) -> bool:
        return any(isinstance(d, OutputDefence) and d.probabilities_only for d in self.defences)

    def _check_params(self) -> None:
        for index, defence in enumerate(self.defences):
            if not isinstance(defence, OutputDefence):
                what = repr(defence) if isinstance(defence, type) else type(defence).__name__
                raise ConfigurationError(MSG_NOT_DEFENCE.format(index=index, what=what))
            defence._check_params()

    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        for defence in self.defences:
            outputs = defence.apply(outputs=outputs, inputs=inputs, client_id=client_id)
        return outputs

    def __repr__(self) -> str:
        return f"Chain({', '.join(map(repr, self.defences))})"


def chain(defences: Iterable[OutputDefence]) -> Chain:
    """Compose ``defences`` (applied in order) into one :class:`Chain`.

    Examples
    --------
    >>> from trustlab.extraction.defences import Rounding, TopK
    >>> chain([TopK(k=3), Rounding(decimals=2)])
    Chain(TopK(k=3, renormalise=False), Rounding(decimals=2))
    """
    return Chain(*defences)

"""The one progress mechanism of trustlab: an event, a callback type and a helper to report.

Long work (training loops, attacks, query loops) takes an optional ``progress`` argument: a
callable that receives one :class:`ProgressEvent` at a time, with the stage's name, how much of
it is done, its total when known, and optional metrics such as the epoch's loss. The library
never prints; a command line or notebook turns the events into a bar (the ``trustlab`` command
line uses Rich, see ``trustlab.cli._progress``).

Examples
--------
>>> events = []
>>> report(events.append, stage="epoch", done=1, total=3, metrics={"loss": 0.5})
>>> events[0].stage, events[0].done, events[0].total, events[0].metrics["loss"]
('epoch', 1, 3, 0.5)
>>> events[0].fraction
0.3333333333333333
>>> report(None, stage="epoch", done=2, total=3)  # no callback: nothing happens
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "null_progress",
    "report",
    "resolve_progress",
]

MSG_LEGACY = (
    "{owner} called a progress callback that takes {arity} positional arguments; this call "
    "shape is deprecated in 0.2 and will be removed in 0.4. Pass a callable that takes one "
    "trustlab.core.progress.ProgressEvent (its .stage, .done, .total and .metrics)."
)


@dataclass(frozen=True)
class ProgressEvent:
    """One report of progress.

    Attributes
    ----------
    stage : str
        What is running: ``"epoch"`` for a training loop, ``"examples"`` for an evasion
        attack, an attack's name inside AutoAttack, ``"queries"`` for an extraction.
    done : int
        Units of the stage done so far (epochs, examples, queries), from 1.
    total : int or None
        Units the stage will take, when known.
    metrics : Mapping[str, float]
        Numbers worth showing beside the bar, e.g. ``{"loss": 0.31}``.
    """

    stage: str
    done: int
    total: int | None = None
    metrics: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def fraction(self) -> float | None:
        """``done / total`` in [0, 1], or None when the total is unknown or zero."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))

    def describe(self) -> str:
        """A one-line text such as ``"epoch 3/10, loss 0.3120"``."""
        text = f"{self.stage} {self.done}" + (f"/{self.total}" if self.total is not None else "")
        parts = [f"{name} {value:.4g}" for name, value in self.metrics.items()]
        return ", ".join([text, *parts])


ProgressCallback = Callable[[ProgressEvent], None]
"""Receives each :class:`ProgressEvent`; what it returns is ignored."""


def null_progress(event: ProgressEvent) -> None:
    """The default callback: ignores every event."""
    del event


def report(
    progress: ProgressCallback | None,
    *,
    stage: str,
    done: int,
    total: int | None = None,
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Send one :class:`ProgressEvent` to ``progress`` (nothing if it is None)."""
    if progress is None:
        return
    values = MappingProxyType({k: float(v) for k, v in (metrics or {}).items()})
    progress(ProgressEvent(stage=stage, done=int(done), total=total, metrics=values))


def _takes_one_argument(fn: Callable[..., object]) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: assume the new shape
        return True
    try:
        signature.bind(None)
    except TypeError:
        return False
    return True


def resolve_progress(
    progress: Callable[..., object] | None,
    *,
    owner: str,
    legacy: Callable[[Callable[..., object], ProgressEvent], None],
    arity: int,
) -> ProgressCallback | None:
    """The callback to report to, adapting the old ``progress(a, b[, c])`` shapes.

    A callable that takes one positional argument gets :class:`ProgressEvent` objects. One
    that needs ``arity`` positional arguments is an old-style callback: it still works, through
    ``legacy(callback, event)``, which unpacks the event the old way, and a FutureWarning says
    how to update it.
    """
    if progress is None or _takes_one_argument(progress):
        return progress  # type: ignore[return-value]
    warnings.warn(MSG_LEGACY.format(owner=owner, arity=arity), FutureWarning, stacklevel=3)
    old = progress

    def adapted(event: ProgressEvent) -> None:
        legacy(old, event)

    return adapted

"""Accuracy-fairness trade-offs: sweep a mitigation over constraint bounds, keep the front."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Satisfies, check_param
from trustlab.core.typing import PathLike
from trustlab.fairness.base import FairnessMitigation, MitigationReport

__all__ = ["ParetoFront", "ParetoPoint", "pareto_sweep", "plot_pareto"]

MSG_FIT_RESULT = (
    "fit(bound) must return a fitted FairnessMitigation (e.g. GroupThresholds(...).fit(...)); "
    "got {what} for bound {bound}."
)
MSG_EVALUATE_RESULT = (
    "evaluate(mitigation) must return a MitigationReport (e.g. mitigation.evaluate(...)); got "
    "{what} for bound {bound}."
)
MSG_NO_MATPLOTLIB = (
    "plot_pareto needs matplotlib, which is not installed; install it with "
    "`pip install trustlab[plot]`."
)


@dataclass(frozen=True)
class ParetoPoint:
    """One mitigation of the sweep, fitted with one bound, and what it achieved.

    Attributes
    ----------
    bound : float
        The constraint bound (or tolerance) the mitigation was fitted with.
    accuracy, gap : float
        Accuracy and gap on the evaluation data.
    criterion : str
        The criterion the gap measures.
    mitigation : FairnessMitigation
        The fitted mitigation (its model or thresholds).
    """

    bound: float
    accuracy: float
    gap: float
    criterion: str
    mitigation: FairnessMitigation


@dataclass(frozen=True)
class ParetoFront:
    """Every point of a sweep and its Pareto front.

    Attributes
    ----------
    points : tuple of ParetoPoint
        Every fitted bound, in the order of the sweep.
    front : tuple of ParetoPoint
        The points no other point beats on both accuracy (higher) and gap (lower), sorted by
        increasing gap.
    """

    points: tuple[ParetoPoint, ...]
    front: tuple[ParetoPoint, ...]

    def best_within(self, gap: float) -> ParetoPoint | None:
        """The most accurate point whose gap is at most ``gap``, or None."""
        within = [point for point in self.points if point.gap <= gap]
        return max(within, key=lambda point: point.accuracy) if within else None

    def to_dict(self) -> list[dict[str, Any]]:
        """The points as JSON-ready records (without the mitigations)."""
        on_front = {id(point) for point in self.front}
        return [
            {
                "bound": point.bound,
                "accuracy": point.accuracy,
                "gap": point.gap,
                "criterion": point.criterion,
                "on_front": id(point) in on_front,
            }
            for point in self.points
        ]


def _front(points: Sequence[ParetoPoint]) -> tuple[ParetoPoint, ...]:
    ordered = sorted(points, key=lambda point: (point.gap, -point.accuracy))
    front: list[ParetoPoint] = []
    for point in ordered:
        if not front or point.accuracy > front[-1].accuracy:
            front.append(point)
    return tuple(front)


def _as_bounds(value: object) -> list[float]:
    """``value`` as a non-empty list of finite floats >= 0; ValueError otherwise."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError
    bounds = []
    for bound in value:
        is_number = isinstance(bound, (int, float)) and not isinstance(bound, bool)
        if not is_number or not math.isfinite(bound) or bound < 0:
            raise ValueError
        bounds.append(float(bound))
    return bounds


#: The constraint of the ``bounds`` of :func:`pareto_sweep`.
BOUNDS = Satisfies(_as_bounds, "a non-empty sequence of finite floats >= 0")


def pareto_sweep(
    *,
    bounds: Sequence[float],
    fit: Callable[[float], FairnessMitigation],
    evaluate: Callable[[FairnessMitigation], MitigationReport],
) -> ParetoFront:
    """Fit a mitigation for every bound, evaluate each, and return the accuracy/gap front.

    Parameters
    ----------
    bounds : sequence of float
        Constraint bounds (``bound`` of
        :class:`~trustlab.fairness.FairnessConstrainedClassifier`, ``tolerance`` of
        :class:`~trustlab.fairness.GroupThresholds`, or any number your ``fit`` reads, such as
        the ``alpha`` of :class:`~trustlab.fairness.AdversarialDebiasing`).
    fit : callable
        ``fit(bound)`` returns a mitigation fitted with that bound. Build a fresh model inside
        it for in-processing mitigations (they train the model in place).
    evaluate : callable
        ``evaluate(mitigation)`` returns its :class:`MitigationReport` on held-out data, e.g.
        ``lambda m: m.evaluate(x=x_test, y=y_test, sensitive_features=a_test)``.

    Returns
    -------
    ParetoFront

    Examples
    --------
    >>> import numpy as np
    >>> from trustlab.fairness import GroupThresholds
    >>> rng = np.random.default_rng(0)
    >>> group = rng.integers(0, 2, 2000)
    >>> y = (rng.random(2000) < 0.2 + 0.3 * group).astype(int)
    >>> scores = y + rng.normal(size=2000)
    >>> sweep = pareto_sweep(
    ...     bounds=[0.0, 0.1, 0.3],
    ...     fit=lambda b: GroupThresholds(tolerance=b).fit(
    ...         scores=scores, y=y, sensitive_features=group
    ...     ),
    ...     evaluate=lambda m: m.evaluate(scores=scores, y=y, sensitive_features=group),
    ... )
    >>> [round(p.bound, 1) for p in sweep.points]
    [0.0, 0.1, 0.3]
    """
    checked: list[float] = check_param(bounds, BOUNDS, name="bounds", owner="pareto_sweep")
    points: list[ParetoPoint] = []
    for bound in checked:
        mitigation = fit(bound)
        if not isinstance(mitigation, FairnessMitigation):
            raise ConfigurationError(
                MSG_FIT_RESULT.format(what=type(mitigation).__name__, bound=bound)
            )
        report = evaluate(mitigation)
        if not isinstance(report, MitigationReport):
            raise ConfigurationError(
                MSG_EVALUATE_RESULT.format(what=type(report).__name__, bound=bound)
            )
        points.append(
            ParetoPoint(
                bound=bound,
                accuracy=report.accuracy,
                gap=report.gap,
                criterion=report.criterion,
                mitigation=mitigation,
            )
        )
    return ParetoFront(points=tuple(points), front=_front(points))


def plot_pareto(
    front: ParetoFront,
    *,
    ax: Any = None,
    path: PathLike | None = None,
    label: str | None = None,
) -> Any:
    """Plot accuracy against gap: every point, the front as a line, each labelled by its bound.

    Parameters
    ----------
    front : ParetoFront
        From :func:`pareto_sweep`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made otherwise.
    path : str or os.PathLike, optional
        Where to save the figure (format from the suffix, e.g. ``.png``, ``.svg``).
    label : str, optional
        Legend label of the front.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ConfigurationError
        If matplotlib is not installed (``pip install trustlab[plot]``).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ConfigurationError(MSG_NO_MATPLOTLIB) from error
    if ax is None:
        if path is not None:
            # A figure outside pyplot: no global backend or figure registry is touched.
            ax = Figure(figsize=(5, 4)).subplots()
        else:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5, 4))
    gaps = [point.gap for point in front.points]
    accuracies = [point.accuracy for point in front.points]
    ax.scatter(gaps, accuracies, color="0.6", s=18, label="all bounds")
    ax.plot(
        [point.gap for point in front.front],
        [point.accuracy for point in front.front],
        marker="o",
        label=label or "Pareto front",
    )
    for point in front.points:
        ax.annotate(
            f"{point.bound:g}",
            (point.gap, point.accuracy),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    criterion = front.points[0].criterion.replace("_", " ") if front.points else "fairness"
    ax.set_xlabel(f"{criterion} gap")
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right")
    if path is not None:
        ax.figure.savefig(path, bbox_inches="tight")
    return ax

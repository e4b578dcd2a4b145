"""Coverage and set size of prediction sets, overall, per class and per group, with intervals.

Sets are a boolean (or 0/1) matrix of shape (n_examples, n_classes), as
:meth:`~trustlab.uncertainty.conformal.ConformalClassifier.predict` returns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trustlab.core.errors import DataError
from trustlab.core.metrics import ConfidenceInterval, bootstrap_ci
from trustlab.core.metrics.roc import to_numpy
from trustlab.core.typing import ArrayLike
from trustlab.uncertainty._inputs import GroupsLike, as_group_codes, as_labels

__all__ = [
    "ConformalReport",
    "CoverageCell",
    "as_sets",
    "conformal_report",
    "empirical_coverage",
    "mean_set_size",
]

MSG_SETS_SHAPE = (
    "sets must be a 0/1 (or boolean) matrix of shape (n_examples, n_classes); got shape {shape}."
)
MSG_SETS_VALUES = "sets must hold only 0 and 1 (or booleans); found {value!r} in row {row}."


def as_sets(sets: ArrayLike) -> np.ndarray:
    """Check a 0/1 matrix of prediction sets and return it as booleans."""
    array = to_numpy(sets)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(MSG_SETS_SHAPE.format(shape=array.shape))
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(MSG_SETS_VALUES.format(value=str(array.dtype), row=0))
    binary = (array == 0) | (array == 1)
    if not binary.all():
        row = int(np.argmin(binary.all(axis=1)))
        value = array[row][~binary[row]][0].item()
        raise DataError(MSG_SETS_VALUES.format(value=value, row=row))
    return array.astype(bool)


def _covered(sets: ArrayLike, y_true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    matrix = as_sets(sets)
    labels = as_labels(y_true, n_classes=matrix.shape[1], n_examples=matrix.shape[0], name="y_true")
    return matrix[np.arange(len(labels)), labels].astype(np.float64), labels


def empirical_coverage(*, sets: ArrayLike, y_true: ArrayLike) -> float:
    """The fraction of examples whose set contains the true label.

    Examples
    --------
    >>> empirical_coverage(sets=[[1, 0], [1, 1], [0, 1]], y_true=[0, 0, 0])
    0.6666666666666666
    """
    covered, _ = _covered(sets, y_true)
    return float(covered.mean())


def mean_set_size(*, sets: ArrayLike) -> float:
    """The mean number of labels per set.

    Examples
    --------
    >>> mean_set_size(sets=[[1, 0], [1, 1]])
    1.5
    """
    return float(as_sets(sets).sum(axis=1).mean())


@dataclass(frozen=True)
class CoverageCell:
    """Coverage and mean set size of some examples, with bootstrap intervals.

    Attributes
    ----------
    n : int
        Number of examples.
    coverage, mean_size : ConfidenceInterval
    """

    n: int
    coverage: ConfidenceInterval
    mean_size: ConfidenceInterval


@dataclass(frozen=True)
class ConformalReport:
    """Coverage and set size overall, per true class and per group.

    Attributes
    ----------
    overall : CoverageCell
    by_class : dict of int to CoverageCell
        Per true class (classes absent from ``y_true`` are left out).
    by_group : dict of str to CoverageCell
        Per group, when groups were given; else empty.
    empty_fraction : float
        Fraction of empty sets.
    """

    overall: CoverageCell
    by_class: dict[int, CoverageCell] = field(default_factory=dict)
    by_group: dict[str, CoverageCell] = field(default_factory=dict)
    empty_fraction: float = 0.0

    def worst_group_coverage(self) -> float | None:
        """The lowest per-group coverage estimate, or None without groups."""
        if not self.by_group:
            return None
        return min(cell.coverage.estimate for cell in self.by_group.values())


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values))


def _cell(
    covered: np.ndarray, size: np.ndarray, *, n_resamples: int, confidence: float, seed: int
) -> CoverageCell:
    def ci(values: np.ndarray) -> ConfidenceInterval:
        return bootstrap_ci(
            _mean,
            arrays={"values": values},
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )

    return CoverageCell(n=len(covered), coverage=ci(covered), mean_size=ci(size))


def conformal_report(
    *,
    sets: ArrayLike,
    y_true: ArrayLike,
    groups: GroupsLike | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ConformalReport:
    """Coverage and mean set size overall, per class and per group, with bootstrap intervals.

    Parameters
    ----------
    sets : array-like of {0, 1} or bool, shape (n_examples, n_classes)
    y_true : array-like of int, shape (n_examples,)
    groups : array-like, shape (n_examples,), optional
        One group per example (codes or strings, e.g. a sensitive attribute), or a mapping
        ``{"sex": ..., "race": ...}`` for intersectional groups named ``"sex=F, race=B"``.
    n_resamples : int, default 1000
    confidence : float, default 0.95
    seed : int, default 0

    Examples
    --------
    >>> r = conformal_report(sets=[[1, 0], [1, 1], [0, 1]], y_true=[0, 0, 1], n_resamples=50)
    >>> r.overall.coverage.estimate, r.overall.mean_size.estimate
    (1.0, 1.3333333333333333)
    """
    covered, labels = _covered(sets, y_true)
    size = as_sets(sets).sum(axis=1).astype(np.float64)
    overall = _cell(covered, size, n_resamples=n_resamples, confidence=confidence, seed=seed)
    by_class = {
        int(k): _cell(
            covered[labels == k],
            size[labels == k],
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        for k in np.unique(labels).tolist()
    }
    by_group: dict[str, CoverageCell] = {}
    if groups is not None:
        codes, names = as_group_codes(groups, n_examples=len(labels))
        by_group = {
            name: _cell(
                covered[codes == g],
                size[codes == g],
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
            )
            for g, name in enumerate(names)
        }
    return ConformalReport(
        overall=overall,
        by_class=by_class,
        by_group=by_group,
        empty_fraction=float(np.mean(size == 0)),
    )

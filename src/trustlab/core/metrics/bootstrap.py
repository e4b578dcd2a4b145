"""Percentile bootstrap confidence intervals for any metric of paired arrays.

References
----------
.. [1] B. Efron and R. J. Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall, 1993,
   chapter 13 (the percentile interval).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.metrics.roc import MSG_NOT_1D, to_numpy
from trustlab.core.typing import ArrayLike

MSG_N_RESAMPLES = (
    "The 'n_resamples' parameter of bootstrap_ci must be an int >= 1. Got {value!r} instead."
)
MSG_CONFIDENCE = (
    "The 'confidence' parameter of bootstrap_ci must be a float in (0, 1). Got {value!r} instead."
)
MSG_SEED = "The 'seed' parameter of bootstrap_ci must be an int. Got {value!r} instead."
MSG_NO_ARRAYS = "bootstrap_ci needs at least one array in 'arrays'; got an empty mapping."
MSG_SCALAR = "arrays[{name!r}] must have one entry per example; got a 0-d array (a scalar)."
MSG_EMPTY = "arrays[{name!r}] is empty; a bootstrap needs at least one example."
MSG_LENGTHS = "Every array in 'arrays' must have the same length; got lengths {lengths}."
MSG_STRATIFY_KEY = (
    "The 'stratify' parameter of bootstrap_ci must name one of the arrays ({known}). "
    "Got {value!r} instead."
)
MSG_METRIC_FAILED = (
    "The metric raised {error_type} on bootstrap resample {index} of {total}: {error} "
    "Resamples are drawn with replacement, so one can lose every example of a class; for ROC "
    "metrics (auc, tpr_at_fpr) pass stratify='y_true' so every resample keeps both classes."
)
MSG_METRIC_NON_FINITE = (
    "The metric returned {value!r} on bootstrap resample {index} of {total}; a confidence "
    "interval needs a finite value on every resample."
)

_MAX_INDICES_PER_CHUNK = 1 << 20


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with a bootstrap confidence interval.

    Attributes
    ----------
    estimate : float
        The metric on the full data (not the mean of the resamples).
    low, high : float
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the metric over
        the resamples.
    confidence : float
        The nominal coverage, e.g. 0.95.
    n_resamples : int
        The number of bootstrap resamples.
    method : {"percentile"}
        How the interval was computed.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    method: Literal["percentile"] = "percentile"


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_parameters(n_resamples: int, confidence: float, seed: int) -> None:
    if not _is_int(n_resamples) or n_resamples < 1:
        raise ConfigurationError(MSG_N_RESAMPLES.format(value=n_resamples))
    is_float = isinstance(confidence, (int, float, np.integer, np.floating)) and not isinstance(
        confidence, (bool, np.bool_)
    )
    if not is_float or not math.isfinite(float(confidence)) or not 0.0 < confidence < 1.0:
        raise ConfigurationError(MSG_CONFIDENCE.format(value=confidence))
    if not _is_int(seed):
        raise ConfigurationError(MSG_SEED.format(value=seed))


def _as_columns(arrays: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    if not arrays:
        raise ConfigurationError(MSG_NO_ARRAYS)
    columns: dict[str, np.ndarray] = {}
    for name, values in arrays.items():
        column = to_numpy(values)
        if column.ndim == 0:
            raise DataError(MSG_SCALAR.format(name=name))
        if len(column) == 0:
            raise DataError(MSG_EMPTY.format(name=name))
        columns[name] = column
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(MSG_LENGTHS.format(lengths=lengths))
    return columns


def _strata(columns: Mapping[str, np.ndarray], stratify: str | None) -> list[np.ndarray]:
    """Row indices of each stratum; one stratum holding every row when not stratifying."""
    n_rows = len(next(iter(columns.values())))
    if stratify is None:
        return [np.arange(n_rows)]
    if stratify not in columns:
        known = ", ".join(repr(name) for name in columns)
        raise ConfigurationError(MSG_STRATIFY_KEY.format(known=known, value=stratify))
    key = columns[stratify]
    if key.ndim != 1:
        raise DataError(MSG_NOT_1D.format(name=f"arrays[{stratify!r}]", shape=key.shape))
    _, inverse = np.unique(key, return_inverse=True)
    return [np.flatnonzero(inverse == stratum) for stratum in range(int(inverse.max()) + 1)]


def _resample_indices(
    strata: list[np.ndarray], n_resamples: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield ``n_resamples`` row-index vectors, drawn with replacement within each stratum.

    Indices are drawn a chunk of resamples at a time (one vectorised call per stratum and
    chunk), so memory stays bounded for large data.
    """
    n_rows = sum(len(stratum) for stratum in strata)
    chunk = max(1, _MAX_INDICES_PER_CHUNK // n_rows)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        block = np.concatenate(
            [
                stratum[rng.integers(0, len(stratum), size=(size, len(stratum)))]
                for stratum in strata
            ],
            axis=1,
        )
        yield from block


def bootstrap_ci(
    metric: Callable[..., float],
    *,
    arrays: Mapping[str, ArrayLike],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    stratify: str | None = None,
) -> ConfidenceInterval:
    """Percentile bootstrap confidence interval of ``metric(**arrays)``.

    Each resample draws ``n`` row indices with replacement and applies them to every array
    jointly (a paired bootstrap: row ``i`` of ``y_true`` stays with row ``i`` of ``scores``),
    then calls ``metric`` with the resampled arrays as keyword arguments. The interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled values.

    Stratification: with ``stratify="y_true"`` (any key of ``arrays``), rows are drawn with
    replacement *within* each distinct value of that array, so every resample keeps exactly
    the class counts of the data. ROC metrics (:func:`~trustlab.core.metrics.auc`,
    :func:`~trustlab.core.metrics.tpr_at_fpr`) need both classes in every resample; use
    stratification for them. Without it, a resample on which ``metric`` raises (or returns a
    non-finite value) is never dropped silently: ``bootstrap_ci`` raises :class:`DataError`
    naming the resample, since dropping it would bias the interval.

    Parameters
    ----------
    metric : callable
        Called as ``metric(**resampled_arrays)``; returns a float.
    arrays : mapping of str to array-like
        The metric's keyword arguments, each with one entry (row) per example along axis 0.
    n_resamples : int, default 1000
        Number of bootstrap resamples.
    confidence : float, default 0.95
        Nominal coverage of the interval, in (0, 1).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same seed and data give the same interval.
    stratify : str or None, default None
        Name of an array in ``arrays`` whose values define the strata to resample within.

    Returns
    -------
    ConfidenceInterval
        ``estimate`` is ``metric`` on the full data; ``low`` and ``high`` bound the interval.

    Raises
    ------
    ConfigurationError
        If a parameter is out of range or ``stratify`` names no array.
    DataError
        If the arrays are empty or differ in length, or ``metric`` fails on a resample.

    Examples
    --------
    >>> import numpy as np
    >>> from trustlab.core.metrics import auc
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 100)
    >>> s = rng.normal(size=200) + y
    >>> ci = bootstrap_ci(auc, arrays={"y_true": y, "scores": s}, stratify="y_true")
    >>> bool(ci.low < ci.estimate < ci.high)
    True
    """
    _check_parameters(n_resamples, confidence, seed)
    columns = _as_columns(arrays)
    strata = _strata(columns, stratify)
    estimate = float(metric(**columns))

    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples, dtype=np.float64)
    for index, rows in enumerate(_resample_indices(strata, n_resamples, rng)):
        resampled = {name: column[rows] for name, column in columns.items()}
        try:
            value = float(metric(**resampled))
        except Exception as error:
            raise DataError(
                MSG_METRIC_FAILED.format(
                    error_type=type(error).__name__, index=index, total=n_resamples, error=error
                )
            ) from error
        if not math.isfinite(value):
            raise DataError(
                MSG_METRIC_NON_FINITE.format(value=value, index=index, total=n_resamples)
            )
        values[index] = value

    alpha = 1.0 - float(confidence)
    low, high = np.quantile(values, [alpha / 2, 1.0 - alpha / 2])
    return ConfidenceInterval(
        estimate=estimate,
        low=float(low),
        high=float(high),
        confidence=float(confidence),
        n_resamples=int(n_resamples),
    )

"""Exact (Clopper-Pearson) confidence intervals for a binomial proportion."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from trustlab.core.params import Real, check_param
from trustlab.core.typing import FloatArray

__all__ = ["CONFIDENCE", "clopper_pearson"]

#: The constraint of a ``confidence`` parameter: a probability strictly between 0 and 1.
CONFIDENCE = Real(low=0, high=1, closed="neither")


def clopper_pearson(
    successes: npt.ArrayLike, trials: npt.ArrayLike, *, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """The two-sided Clopper-Pearson interval of a binomial proportion, element-wise.

    With ``k`` successes in ``n`` trials and ``alpha = 1 - confidence``, the interval is
    ``[B(alpha/2; k, n-k+1), B(1-alpha/2; k+1, n-k)]`` where ``B(q; a, b)`` is the ``q``
    quantile of a Beta(a, b) distribution; the lower end is 0 when ``k = 0`` and the upper end
    1 when ``k = n``. It covers the true proportion with probability at least ``confidence``
    (Clopper and Pearson, 1934); it is the interval of ``statsmodels``'s ``method="beta"``.

    Parameters
    ----------
    successes, trials : array-like of int
        Broadcastable counts with ``0 <= successes <= trials`` and ``trials >= 1``.
    confidence : float, default=0.95
        In (0, 1).

    Returns
    -------
    (low, high) : tuple of ndarray of float64

    Examples
    --------
    >>> low, high = clopper_pearson(0, 10)
    >>> float(low), round(float(high), 4)
    (0.0, 0.3085)
    """
    confidence = check_param(confidence, CONFIDENCE, name="confidence", owner="clopper_pearson")
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        low = stats.beta.ppf(alpha / 2, k, n - k + 1)
        high = stats.beta.ppf(1 - alpha / 2, k + 1, n - k)
    low = np.where(k <= 0, 0.0, low)
    high = np.where(k >= n, 1.0, high)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)

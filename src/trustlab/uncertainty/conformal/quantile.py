"""The finite-sample conformal quantile of split conformal prediction.

With ``n`` calibration scores and a miscoverage level ``alpha``, the threshold is the
``k``-th smallest score, ``k = ceil((n + 1) * (1 - alpha))``: the empirical quantile at level
``ceil((n + 1)(1 - alpha)) / n``. If the test score is exchangeable with the calibration
scores, ``P(score_test <= threshold) >= 1 - alpha`` (Vovk et al., 2005; Angelopoulos and
Bates, 2023, theorem D.1). When ``k > n`` (too few scores for this ``alpha``) the threshold is
``+inf``: every label is kept.

``numpy.quantile(scores, k / n, method="higher")``, as some tutorials write it, picks the
``(k + 1)``-th smallest score when ``k < n`` (one rank more conservative); ``method="lower"``
(MAPIE) and ``torch.kthvalue(scores, k)`` (TorchCP) pick the ``k``-th, as here.
"""

from __future__ import annotations

import math

import numpy as np

from trustlab.core.errors import DataError
from trustlab.core.metrics.roc import to_numpy
from trustlab.core.params import Real, check_param
from trustlab.core.typing import ArrayLike, FloatArray

__all__ = ["conformal_quantile", "conformal_rank"]

MSG_SCORES = "scores must be a non-empty 1-D array of numbers (NaN refused); got shape {shape}."
MSG_NAN = "scores holds NaN at index {index}; every calibration score must be a number."

_ALPHA = Real(low=0, high=1, closed="neither")
#: Guards ``ceil`` against float error in ``(n + 1) * (1 - alpha)`` (``100 * 0.9`` may be
#: ``90.00000000000001``).
_ROUNDING = 1e-9


def conformal_rank(n: int, alpha: float) -> int:
    """The rank ``k = ceil((n + 1) * (1 - alpha))`` of the conformal threshold (1-based).

    Examples
    --------
    >>> conformal_rank(99, 0.1), conformal_rank(100, 0.1), conformal_rank(5, 0.1)
    (90, 91, 6)
    """
    alpha = check_param(alpha, _ALPHA, name="alpha", owner="conformal_rank")
    return math.ceil((n + 1) * (1.0 - alpha) - _ROUNDING)


def conformal_quantile(scores: ArrayLike, *, alpha: float) -> float:
    """The split-conformal threshold of calibration ``scores`` at level ``alpha``.

    Parameters
    ----------
    scores : array-like of float, shape (n,)
        Non-conformity scores of the calibration examples at their true labels (may hold
        ``+inf``, never NaN).
    alpha : float
        Target miscoverage, in (0, 1).

    Returns
    -------
    float
        The ``ceil((n + 1)(1 - alpha))``-th smallest score, or ``+inf`` if that rank exceeds
        ``n``.

    Examples
    --------
    >>> conformal_quantile([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], alpha=0.2)
    0.8
    >>> conformal_quantile([0.1, 0.2], alpha=0.1)
    inf
    """
    alpha = check_param(alpha, _ALPHA, name="alpha", owner="conformal_quantile")
    values: FloatArray = np.asarray(to_numpy(scores), dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise DataError(MSG_SCORES.format(shape=values.shape))
    if np.isnan(values).any():
        raise DataError(MSG_NAN.format(index=int(np.argmax(np.isnan(values)))))
    k = conformal_rank(values.size, alpha)
    if k > values.size:
        return math.inf
    return float(np.partition(values, k - 1)[k - 1])

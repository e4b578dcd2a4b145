"""Calibration metrics of predicted class probabilities: ECE, MCE, classwise ECE, Brier, NLL.

Every metric is a function of two arrays, the true labels ``y_true`` of shape (n,) and the
predicted probabilities ``probs`` of shape (n, n_classes), and returns a float;
:func:`calibration_report` computes them all with bootstrap confidence intervals
(:func:`trustlab.core.metrics.bootstrap_ci`).

Binning
-------
``binning="width"`` splits [0, 1] into ``n_bins`` equal-width bins (Guo et al., 2017; a
confidence ``c`` falls in bin ``b`` if ``b / B < c <= (b + 1) / B``, and a confidence of exactly 0
in the first bin). ``binning="mass"`` puts (as nearly as possible) the same number of
examples in every bin, by the sorted confidences (Nixon et al., 2019); ties may straddle two
bins.

References
----------
.. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of Modern Neural
   Networks", ICML 2017.
.. [2] J. Nixon, M. Dusenberry, L. Zhang, G. Jerfel and D. Tran, "Measuring Calibration in
   Deep Learning", CVPR Workshops 2019.
.. [3] M. Kull, M. Perello-Nieto, M. Kängsepp, T. Silva Filho, H. Song and P. Flach, "Beyond
   temperature scaling: Obtaining well-calibrated multiclass probabilities with Dirichlet
   calibration", NeurIPS 2019 (classwise ECE).
.. [4] G. W. Brier, "Verification of forecasts expressed in terms of probability", Monthly
   Weather Review, 1950.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trustlab.core.metrics import ConfidenceInterval, bootstrap_ci
from trustlab.core.params import Integer, Options, check_param
from trustlab.core.typing import ArrayLike, FloatArray, IntArray
from trustlab.uncertainty._inputs import as_labels, as_probabilities

__all__ = [
    "ReliabilityBins",
    "brier_score",
    "calibration_report",
    "classwise_ece",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reliability_bins",
]

_BINS = Integer(low=1)
_BINNING = Options("width", "mass")
#: Probabilities are clipped to at least this in the log of the NLL.
NLL_FLOOR = 1e-12


@dataclass(frozen=True)
class ReliabilityBins:
    """The per-bin statistics of a reliability diagram.

    Attributes
    ----------
    lower, upper : ndarray of float64, shape (n_bins,)
        The confidence range of each bin.
    confidence, accuracy : ndarray of float64, shape (n_bins,)
        Mean top-label confidence and accuracy of the examples in each bin (NaN when empty).
    count : ndarray of int64, shape (n_bins,)
        Examples per bin.
    """

    lower: FloatArray
    upper: FloatArray
    confidence: FloatArray
    accuracy: FloatArray
    count: IntArray

    @property
    def gaps(self) -> FloatArray:
        """``|accuracy - confidence|`` per bin; 0 for empty bins."""
        gaps: FloatArray = np.where(self.count > 0, np.abs(self.accuracy - self.confidence), 0.0)
        return gaps


def _inputs(y_true: ArrayLike, probs: ArrayLike) -> tuple[IntArray, FloatArray]:
    matrix = as_probabilities(probs)
    labels = as_labels(y_true, n_classes=matrix.shape[1], n_examples=matrix.shape[0], name="y_true")
    return labels, matrix


def _bin_index(values: FloatArray, *, n_bins: int, binning: str) -> tuple[IntArray, FloatArray]:
    """The bin of every value and the ``n_bins + 1`` bin edges."""
    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        index = np.clip(np.ceil(values * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
        return index, edges
    order = np.argsort(values, kind="stable")
    index = np.empty(len(values), dtype=np.int64)
    index[order] = (np.arange(len(values)) * n_bins) // len(values)
    edges = np.empty(n_bins + 1)
    edges[0], edges[-1] = 0.0, 1.0
    for b in range(1, n_bins):
        inside = values[index == b]
        edges[b] = float(inside.min()) if inside.size else edges[b - 1]
    return index, edges


def _binned(
    confidence: FloatArray, correct: FloatArray, *, n_bins: int, binning: str
) -> ReliabilityBins:
    index, edges = _bin_index(confidence, n_bins=n_bins, binning=binning)
    count = np.bincount(index, minlength=n_bins).astype(np.int64)
    sum_conf = np.bincount(index, weights=confidence, minlength=n_bins)
    sum_acc = np.bincount(index, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, sum_conf / np.maximum(count, 1), np.nan)
        mean_acc = np.where(count > 0, sum_acc / np.maximum(count, 1), np.nan)
    return ReliabilityBins(
        lower=edges[:-1].copy(),
        upper=edges[1:].copy(),
        confidence=mean_conf,
        accuracy=mean_acc,
        count=count,
    )


def _check(n_bins: int, binning: str, owner: str) -> tuple[int, str]:
    return (
        check_param(n_bins, _BINS, name="n_bins", owner=owner),
        check_param(binning, _BINNING, name="binning", owner=owner),
    )


def reliability_bins(
    *, y_true: ArrayLike, probs: ArrayLike, n_bins: int = 15, binning: str = "width"
) -> ReliabilityBins:
    """Top-label confidence and accuracy per bin: the numbers behind a reliability diagram.

    Parameters
    ----------
    y_true : array-like of int, shape (n_examples,)
    probs : array-like of float, shape (n_examples, n_classes)
        Predicted probabilities; every row sums to 1.
    n_bins : int, default 15
    binning : {"width", "mass"}, default "width"

    Examples
    --------
    >>> bins = reliability_bins(y_true=[0, 1], probs=[[0.9, 0.1], [0.8, 0.2]], n_bins=2)
    >>> bins.count.tolist(), bins.accuracy[1]
    ([0, 2], np.float64(0.5))
    """
    n_bins, binning = _check(n_bins, binning, "reliability_bins")
    labels, matrix = _inputs(y_true, probs)
    confidence = matrix.max(axis=1)
    correct = (matrix.argmax(axis=1) == labels).astype(np.float64)
    return _binned(confidence, correct, n_bins=n_bins, binning=binning)


def expected_calibration_error(
    *, y_true: ArrayLike, probs: ArrayLike, n_bins: int = 15, binning: str = "width"
) -> float:
    """Expected calibration error of the top-label confidence (Guo et al., 2017).

    ``ECE = sum_b (n_b / n) * |acc_b - conf_b|`` over the bins, where ``conf_b`` is the mean
    top-label probability and ``acc_b`` the accuracy of the examples in bin ``b``.

    Examples
    --------
    >>> expected_calibration_error(y_true=[0, 1], probs=[[0.9, 0.1], [0.8, 0.2]], n_bins=2)
    0.35
    """
    bins = reliability_bins(y_true=y_true, probs=probs, n_bins=n_bins, binning=binning)
    total = int(bins.count.sum())
    return float(round(np.sum(bins.count * bins.gaps) / total, 12))


def maximum_calibration_error(
    *, y_true: ArrayLike, probs: ArrayLike, n_bins: int = 15, binning: str = "width"
) -> float:
    """Maximum calibration error: the largest ``|acc_b - conf_b|`` over non-empty bins.

    Examples
    --------
    >>> maximum_calibration_error(y_true=[0, 1], probs=[[0.9, 0.1], [0.8, 0.2]], n_bins=2)
    0.35
    """
    bins = reliability_bins(y_true=y_true, probs=probs, n_bins=n_bins, binning=binning)
    return float(round(bins.gaps.max(), 12))


def classwise_ece(
    *, y_true: ArrayLike, probs: ArrayLike, n_bins: int = 15, binning: str = "width"
) -> float:
    """Classwise ECE (Kull et al., 2019): the mean over classes ``k`` of the ECE of the
    probability ``probs[:, k]`` against the event ``y == k`` (all examples, every class).

    Examples
    --------
    >>> round(classwise_ece(y_true=[0, 1], probs=[[0.9, 0.1], [0.8, 0.2]], n_bins=2), 4)
    0.35
    """
    n_bins, binning = _check(n_bins, binning, "classwise_ece")
    labels, matrix = _inputs(y_true, probs)
    errors = []
    for k in range(matrix.shape[1]):
        event = (labels == k).astype(np.float64)
        bins = _binned(matrix[:, k], event, n_bins=n_bins, binning=binning)
        errors.append(np.sum(bins.count * bins.gaps) / len(labels))
    return float(np.mean(errors))


def brier_score(*, y_true: ArrayLike, probs: ArrayLike) -> float:
    """Multi-class Brier score (Brier, 1950): ``mean_i sum_k (probs[i, k] - [y_i == k])^2``.

    In [0, 2]; lower is better.

    Examples
    --------
    >>> brier_score(y_true=[0, 1], probs=[[1.0, 0.0], [0.5, 0.5]])
    0.25
    """
    labels, matrix = _inputs(y_true, probs)
    onehot = np.zeros_like(matrix)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((matrix - onehot) ** 2, axis=1)))


def negative_log_likelihood(*, y_true: ArrayLike, probs: ArrayLike) -> float:
    """Mean negative log-likelihood ``-mean_i log probs[i, y_i]`` (probabilities floored at
    ``1e-12``).

    Examples
    --------
    >>> round(negative_log_likelihood(y_true=[0], probs=[[0.5, 0.5]]), 6)
    0.693147
    """
    labels, matrix = _inputs(y_true, probs)
    picked = np.maximum(matrix[np.arange(len(labels)), labels], NLL_FLOOR)
    return float(-np.mean(np.log(picked)))


def calibration_report(
    *,
    y_true: ArrayLike,
    probs: ArrayLike,
    n_bins: int = 15,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, ConfidenceInterval]:
    """Every calibration metric with a percentile bootstrap interval.

    Returns
    -------
    dict of str to ConfidenceInterval
        Keys ``ece`` (equal width), ``ece_mass`` (equal mass), ``mce``, ``classwise_ece``,
        ``brier`` and ``nll``; the same resamples (same seed) serve every metric.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.full((50, 2), 0.5)
    >>> report = calibration_report(y_true=np.arange(50) % 2, probs=p, n_resamples=20)
    >>> round(report["ece"].estimate, 3)
    0.0
    """
    labels, matrix = _inputs(y_true, probs)
    n_bins = check_param(n_bins, _BINS, name="n_bins", owner="calibration_report")
    metrics: dict[str, Callable[..., float]] = {
        "ece": lambda y_true, probs: expected_calibration_error(
            y_true=y_true, probs=probs, n_bins=n_bins
        ),
        "ece_mass": lambda y_true, probs: expected_calibration_error(
            y_true=y_true, probs=probs, n_bins=n_bins, binning="mass"
        ),
        "mce": lambda y_true, probs: maximum_calibration_error(
            y_true=y_true, probs=probs, n_bins=n_bins
        ),
        "classwise_ece": lambda y_true, probs: classwise_ece(
            y_true=y_true, probs=probs, n_bins=n_bins
        ),
        "brier": brier_score,
        "nll": negative_log_likelihood,
    }
    return {
        name: bootstrap_ci(
            metric,
            arrays={"y_true": labels, "probs": matrix},
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        for name, metric in metrics.items()
    }

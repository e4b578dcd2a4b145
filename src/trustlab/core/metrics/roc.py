"""ROC curve, ROC AUC and TPR at a fixed FPR for binary scores.

The membership-inference literature reports an attack's true-positive rate at a low
false-positive rate on a log-scale ROC curve (Carlini et al., 2022) beside the area under the
curve. Everything here is plain NumPy: inputs may be NumPy arrays, lists or torch tensors, and
the results are float64 arrays or Python floats.

Threshold rule
--------------
Every metric here reads the same ROC operating points: the decision rules "positive iff
``score >= t``" for every distinct score value ``t``, plus ``t = +inf`` (nothing positive,
the point (0, 0)). Tied scores are one operating point: they are never split.
:func:`tpr_at_fpr` returns the largest TPR among the operating points whose FPR is ``<=`` the
target, without interpolation.

References
----------
.. [1] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis and F. Tramèr, "Membership Inference
   Attacks From First Principles", IEEE S&P 2022.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.typing import ArrayLike, FloatArray

MSG_NOT_NUMERIC = "{name} must hold numbers; got an array of dtype {dtype}."
MSG_NOT_1D = "{name} must be 1-D with one entry per example; got shape {shape}."
MSG_LENGTH = "{first} and {second} must have the same length; got {n_first} and {n_second} entries."
MSG_NOT_BINARY = "{name} must contain only 0 and 1; found {value!r} at index {index}."
MSG_MISSING_CLASS = (
    "{name} contains no {which} examples (label {label}); ROC metrics need at least one "
    "example of each class."
)
MSG_NON_FINITE = "{name} contains {what} at index {index}; every score must be a finite number."
MSG_FPR = "The 'fpr' parameter of {func} must be a float in (0, 1). Got {value!r} instead."


@dataclass(frozen=True)
class RocCurve:
    """The ROC operating points of a set of binary scores.

    Attributes
    ----------
    fpr, tpr : ndarray of float64, shape (n_points,)
        False- and true-positive rates, both non-decreasing, from (0, 0) to (1, 1).
    thresholds : ndarray of float64, shape (n_points,)
        ``thresholds[i]`` is the rule "positive iff ``score >= thresholds[i]``" that gives
        ``(fpr[i], tpr[i])``; decreasing, starting at ``+inf``.
    """

    fpr: FloatArray
    tpr: FloatArray
    thresholds: FloatArray


def to_numpy(values: ArrayLike) -> np.ndarray:
    """Return ``values`` (NumPy array, torch tensor, list, scalar) as a NumPy array.

    Tensors are detached and copied to the CPU; bfloat16 tensors become float32 because NumPy
    has no bfloat16.
    """
    if isinstance(values, torch.Tensor):
        tensor = values.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(values)


def as_binary_labels(values: ArrayLike, *, name: str = "y_true") -> np.ndarray:
    """Check that ``values`` is a 1-D array of 0/1 (or bool) labels with both classes present.

    Parameters
    ----------
    values : array-like, shape (n_examples,)
        Labels; 1 (or ``True``) is the positive class.
    name : str, default "y_true"
        The argument's name, used in error messages.

    Returns
    -------
    ndarray of int64, shape (n_examples,)

    Raises
    ------
    DataError
        If ``values`` is not 1-D, holds something other than 0 and 1, or lacks a class.
    """
    array = to_numpy(values)
    if array.ndim != 1:
        raise DataError(MSG_NOT_1D.format(name=name, shape=array.shape))
    if array.dtype != np.bool_ and not np.issubdtype(array.dtype, np.number):
        raise DataError(MSG_NOT_NUMERIC.format(name=name, dtype=array.dtype))
    is_binary = (array == 0) | (array == 1)
    if not is_binary.all():
        index = int(np.argmin(is_binary))
        raise DataError(MSG_NOT_BINARY.format(name=name, value=array[index].item(), index=index))
    labels = array.astype(np.int64)
    for label, which in ((1, "positive"), (0, "negative")):
        if not (labels == label).any():
            raise DataError(MSG_MISSING_CLASS.format(name=name, which=which, label=label))
    return labels


def as_finite_scores(values: ArrayLike, *, name: str = "scores") -> FloatArray:
    """Check that ``values`` is a 1-D array of finite numbers and return it as float64.

    Raises
    ------
    DataError
        If ``values`` is not 1-D, not numeric, or holds a NaN or an infinity (the message gives
        the index of the first one).
    """
    array = to_numpy(values)
    if array.ndim != 1:
        raise DataError(MSG_NOT_1D.format(name=name, shape=array.shape))
    if array.dtype != np.bool_ and not np.issubdtype(array.dtype, np.number):
        raise DataError(MSG_NOT_NUMERIC.format(name=name, dtype=array.dtype))
    scores = array.astype(np.float64)
    finite = np.isfinite(scores)
    if not finite.all():
        index = int(np.argmin(finite))
        what = "NaN" if np.isnan(scores[index]) else "an infinity"
        raise DataError(MSG_NON_FINITE.format(name=name, what=what, index=index))
    return scores


def _validate(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, FloatArray]:
    labels_raw = to_numpy(y_true)
    scores_raw = to_numpy(scores)
    if labels_raw.ndim == 1 and scores_raw.ndim == 1 and len(labels_raw) != len(scores_raw):
        raise DataError(
            MSG_LENGTH.format(
                first="y_true",
                second="scores",
                n_first=len(labels_raw),
                n_second=len(scores_raw),
            )
        )
    return as_binary_labels(labels_raw), as_finite_scores(scores_raw)


def _check_fpr(fpr: float, *, func: str) -> float:
    is_number = isinstance(fpr, (int, float, np.integer, np.floating)) and not isinstance(
        fpr, (bool, np.bool_)
    )
    if not is_number or not math.isfinite(float(fpr)) or not 0.0 < float(fpr) < 1.0:
        raise ConfigurationError(MSG_FPR.format(func=func, value=fpr))
    return float(fpr)


def _curve(labels: np.ndarray, scores: FloatArray) -> RocCurve:
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # Index of the last example of each run of tied scores: one operating point per run.
    last_of_run = np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1])
    last_of_run = np.append(last_of_run, sorted_scores.size - 1)
    true_positives = np.cumsum(sorted_labels)[last_of_run]
    false_positives = last_of_run + 1 - true_positives
    true_positives = np.concatenate(([0], true_positives)).astype(np.float64)
    false_positives = np.concatenate(([0], false_positives)).astype(np.float64)
    thresholds = np.concatenate(([np.inf], sorted_scores[last_of_run]))
    return RocCurve(
        fpr=false_positives / false_positives[-1],
        tpr=true_positives / true_positives[-1],
        thresholds=thresholds,
    )


def _tpr_at(curve: RocCurve, fpr: float) -> float:
    # fpr is non-decreasing and tpr is non-decreasing along the curve, so the largest TPR with
    # FPR <= target is the TPR of the last point with FPR <= target; (0, 0) always qualifies.
    last = int(np.searchsorted(curve.fpr, fpr, side="right")) - 1
    return float(curve.tpr[last])


def roc_curve(*, y_true: ArrayLike, scores: ArrayLike) -> RocCurve:
    """Compute the ROC curve of binary scores at every distinct score value.

    The points are those of ``sklearn.metrics.roc_curve(y_true, scores,
    drop_intermediate=False)``: one per distinct score (ties form one operating point), in
    decreasing order of threshold, preceded by (0, 0) at threshold ``+inf``.

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool, shape (n_examples,)
        True labels; 1 is the positive class (for membership inference: member).
    scores : array-like of float, shape (n_examples,)
        Finite scores; higher means more likely positive.

    Returns
    -------
    RocCurve
        ``fpr``, ``tpr`` and ``thresholds``, each of shape (n_distinct_scores + 1,).

    Raises
    ------
    DataError
        If the arrays are not 1-D, differ in length, ``y_true`` is not binary or lacks a class,
        or ``scores`` holds a NaN or an infinity.

    Examples
    --------
    >>> curve = roc_curve(y_true=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8])
    >>> curve.fpr.tolist(), curve.tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    labels, checked = _validate(y_true, scores)
    return _curve(labels, checked)


def auc(*, y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve of binary scores.

    The trapezoid rule over :func:`roc_curve`'s points; equal to the Mann-Whitney statistic
    P(score of a random positive > score of a random negative), with ties counted 1/2, and to
    ``sklearn.metrics.roc_auc_score``.

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool, shape (n_examples,)
        True labels; 1 is the positive class.
    scores : array-like of float, shape (n_examples,)
        Finite scores; higher means more likely positive.

    Returns
    -------
    float
        In [0, 1]; 0.5 for uninformative scores.

    Examples
    --------
    >>> auc(y_true=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8])
    0.75
    """
    curve = roc_curve(y_true=y_true, scores=scores)
    return float(np.trapezoid(curve.tpr, curve.fpr))


def tpr_at_fpr(*, y_true: ArrayLike, scores: ArrayLike, fpr: float) -> float:
    """True-positive rate at a target false-positive rate.

    Threshold rule: the largest TPR among the ROC operating points (decision rules "positive
    iff ``score >= t``" over the distinct score values ``t``, plus ``t = +inf``) whose FPR is
    ``<=`` ``fpr``. There is no interpolation between points, and tied scores are never split,
    so the result is conservative: it is the TPR of an attack that really runs at an FPR no
    higher than the target. This matches the evaluation code of Carlini et al. (2022), which
    takes the last ROC point with FPR below the target. If even the highest score belongs to a
    negative example and the target is below its FPR, the result is 0.0.

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool, shape (n_examples,)
        True labels; 1 is the positive class.
    scores : array-like of float, shape (n_examples,)
        Finite scores; higher means more likely positive.
    fpr : float
        Target false-positive rate, in (0, 1).

    Returns
    -------
    float
        The TPR, in [0, 1].

    Raises
    ------
    ConfigurationError
        If ``fpr`` is not a number in (0, 1).
    DataError
        If the inputs fail the checks of :func:`roc_curve`.

    Examples
    --------
    >>> tpr_at_fpr(y_true=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8], fpr=0.1)
    0.5
    """
    target = _check_fpr(fpr, func="tpr_at_fpr")
    return _tpr_at(roc_curve(y_true=y_true, scores=scores), target)


def tpr_at_fprs(
    *, y_true: ArrayLike, scores: ArrayLike, fprs: Sequence[float]
) -> dict[float, float]:
    """True-positive rates at several target false-positive rates, from one ROC curve.

    Each value follows the threshold rule of :func:`tpr_at_fpr`.

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool, shape (n_examples,)
        True labels; 1 is the positive class.
    scores : array-like of float, shape (n_examples,)
        Finite scores; higher means more likely positive.
    fprs : sequence of float
        Target false-positive rates, each in (0, 1).

    Returns
    -------
    dict of float to float
        ``{target_fpr: tpr}``, in the order of ``fprs``.

    Examples
    --------
    >>> tpr_at_fprs(y_true=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8], fprs=[0.1, 0.5])
    {0.1: 0.5, 0.5: 1.0}
    """
    targets = [_check_fpr(target, func="tpr_at_fprs") for target in fprs]
    curve = roc_curve(y_true=y_true, scores=scores)
    return {target: _tpr_at(curve, target) for target in targets}

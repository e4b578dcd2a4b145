"""The computing core of the fairness metrics: weighted per-group rates, resampled at once.

Every built-in metric is a ratio of two per-example sums over a group (accuracy, selection
rate, TPR, FPR, TNR, FNR, precision) or a sum of absolute per-bin sums (expected calibration
error). Written with per-example weights, one matrix product evaluates the metric on the data
(weights all 1) or on a whole block of bootstrap resamples (each row of weights counts how often
each example was drawn).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from trustlab.core.errors import DataError
from trustlab.core.typing import FloatArray, IntArray
from trustlab.fairness._inputs import Groups

MSG_UNDEFINED = (
    "The {metric} of group {group!r} is undefined: the group has no {condition}. Merge small "
    "groups, use fewer sensitive attributes or drop this metric."
)
MSG_UNDEFINED_OVERALL = "The {metric} is undefined: there are no {condition} at all."
MSG_UNDEFINED_RESAMPLE = (
    "The {metric} of group {group!r} is undefined on bootstrap resample {index}: the resample "
    "has no {condition} in that group. Pass n_bootstrap=0 or drop this metric for small groups."
)
MSG_PROBABILITIES = (
    "y_score must hold probabilities in [0, 1] for the calibration error; found {value!r} at "
    "index {index}. Apply a sigmoid or softmax to logits first."
)

#: Names of the built-in metrics that compare hard predictions with a positive label.
RATE_METRICS = (
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "true_negative_rate",
    "false_negative_rate",
    "precision",
)
#: Built-in metrics that do not depend on a positive label.
LABEL_FREE_METRICS = ("accuracy", "error_rate", "calibration_error")
BUILTIN_METRICS = (*LABEL_FREE_METRICS, *RATE_METRICS)

_RESAMPLE_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Rate:
    """A metric ``sum(w * numerator) / sum(w * denominator)`` within each group."""

    numerator: FloatArray
    denominator: FloatArray
    condition: str


def rate_of(name: str, *, y_true: IntArray, y_pred: IntArray, pos_label: int | None) -> Rate:
    """Per-example numerator and denominator of the built-in metric ``name``."""
    ones = np.ones(len(y_pred), dtype=np.float64)
    if name == "accuracy":
        return Rate((y_pred == y_true).astype(np.float64), ones, "examples")
    if name == "error_rate":
        return Rate((y_pred != y_true).astype(np.float64), ones, "examples")
    assert pos_label is not None
    predicted = y_pred == pos_label
    positive = y_true == pos_label
    pos_text = f"examples with y_true == {pos_label}"
    neg_text = f"examples with y_true != {pos_label}"
    if name == "selection_rate":
        return Rate(predicted.astype(np.float64), ones, "examples")
    if name == "true_positive_rate":
        return Rate((predicted & positive).astype(np.float64), positive.astype(float), pos_text)
    if name == "false_negative_rate":
        return Rate((~predicted & positive).astype(np.float64), positive.astype(float), pos_text)
    if name == "false_positive_rate":
        return Rate((predicted & ~positive).astype(np.float64), (~positive).astype(float), neg_text)
    if name == "true_negative_rate":
        return Rate(
            (~predicted & ~positive).astype(np.float64), (~positive).astype(float), neg_text
        )
    if name == "precision":
        return Rate(
            (predicted & positive).astype(np.float64),
            predicted.astype(np.float64),
            f"examples with y_pred == {pos_label}",
        )
    raise KeyError(name)


def calibration_parts(
    *, y_true: IntArray, y_score: FloatArray, pos_label: int | None, n_bins: int
) -> tuple[IntArray, FloatArray]:
    """Bin index and signed gap ``target - confidence`` of every example.

    With 1-D scores (the probability of ``pos_label``) the target is ``y_true == pos_label``;
    with 2-D probabilities it is top-label: confidence ``max_k p_k``, target ``argmax == y_true``.
    """
    bad = (y_score < 0.0) | (y_score > 1.0)
    if bad.any():
        flat = bad.reshape(bad.shape[0], -1).any(axis=1)
        index = int(np.argmax(flat))
        value = float(np.ravel(y_score[index])[np.argmax(np.ravel(bad[index]))])
        raise DataError(MSG_PROBABILITIES.format(value=value, index=index))
    if y_score.ndim == 1:
        label = 1 if pos_label is None else pos_label
        confidence = y_score
        target = (y_true == label).astype(np.float64)
    else:
        confidence = y_score.max(axis=1)
        target = (y_score.argmax(axis=1) == y_true).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    return bins, target - confidence


def group_sums(
    values: FloatArray, codes: IntArray, n_cells: int, weights: FloatArray | None
) -> FloatArray:
    """Sums of ``weights * values`` within each cell: shape (n_resamples or 1, n_cells)."""
    if weights is None:
        sums: FloatArray = np.bincount(codes, weights=values, minlength=n_cells).astype(np.float64)
        return sums[None, :]
    onehot = np.zeros((len(codes), n_cells), dtype=np.float64)
    onehot[np.arange(len(codes)), codes] = values
    return weights @ onehot


def rate_values(
    rate: Rate, groups: Groups, weights: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Numerators and denominators per group (B, G) and overall (B,)."""
    num = group_sums(rate.numerator, groups.codes, groups.n_groups, weights)
    den = group_sums(rate.denominator, groups.codes, groups.n_groups, weights)
    return num, den, num.sum(axis=1), den.sum(axis=1)


def calibration_values(
    bins: IntArray, gaps: FloatArray, groups: Groups, n_bins: int, weights: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    """Expected calibration error by group (B, G) and overall (B,)."""
    cells = groups.codes * n_bins + bins
    sums = group_sums(gaps, cells, groups.n_groups * n_bins, weights)
    sums = sums.reshape(sums.shape[0], groups.n_groups, n_bins)
    sizes = group_sums(np.ones(len(bins)), groups.codes, groups.n_groups, weights)
    by_group = np.abs(sums).sum(axis=2) / sizes
    overall = np.abs(sums.sum(axis=1)).sum(axis=1) / sizes.sum(axis=1)
    return by_group, overall


def divide(
    num: FloatArray,
    den: FloatArray,
    *,
    metric: str,
    condition: str,
    group_names: tuple[str, ...] | None,
    resampled: bool = False,
) -> FloatArray:
    """``num / den``, raising :class:`DataError` that names the group where ``den`` is 0."""
    empty = den <= 0
    if empty.any():
        if group_names is None:
            raise DataError(MSG_UNDEFINED_OVERALL.format(metric=metric, condition=condition))
        row, col = (int(v) for v in np.argwhere(empty)[0])
        message = MSG_UNDEFINED_RESAMPLE if resampled else MSG_UNDEFINED
        raise DataError(
            message.format(metric=metric, group=group_names[col], condition=condition, index=row)
        )
    result: FloatArray = num / den
    return result


def safe_ratio(low: FloatArray, high: FloatArray) -> FloatArray:
    """``min(a, b) / max(a, b)`` elementwise, 1 where both are 0."""
    small = np.minimum(low, high)
    large = np.maximum(low, high)
    out: FloatArray = np.divide(small, large, out=np.ones_like(large), where=large > 0)
    return out


def aggregate(by_group: FloatArray, overall: FloatArray, *, kind: str, method: str) -> FloatArray:
    """Difference (or ratio) between groups or to the overall value, per resample row."""
    if kind == "difference":
        if method == "between_groups":
            result: FloatArray = by_group.max(axis=1) - by_group.min(axis=1)
            return result
        return np.abs(by_group - overall[:, None]).max(axis=1)
    if method == "between_groups":
        return safe_ratio(by_group.min(axis=1), by_group.max(axis=1))
    return safe_ratio(by_group, np.broadcast_to(overall[:, None], by_group.shape)).min(axis=1)


def resample_weights(
    strata: IntArray, *, n_resamples: int, rng: np.random.Generator
) -> Iterator[FloatArray]:
    """Blocks of bootstrap count vectors, drawn with replacement within each stratum."""
    n = len(strata)
    cells = [np.flatnonzero(strata == value) for value in np.unique(strata)]
    block = max(1, _RESAMPLE_BLOCK_ELEMENTS // n)
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        weights = np.zeros((size, n), dtype=np.float64)
        for cell in cells:
            draws = rng.integers(0, len(cell), size=(size, len(cell)))
            flat = (draws + np.arange(size)[:, None] * len(cell)).ravel()
            counts = np.bincount(flat, minlength=size * len(cell)).reshape(size, len(cell))
            weights[:, cell] = counts
        yield weights


def callable_values(
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    y_true: IntArray,
    y_pred: IntArray,
    groups: Groups,
    weights: FloatArray | None,
) -> tuple[FloatArray, FloatArray]:
    """A user metric ``metric(y_true, y_pred)`` by group (B, G) and overall (B,)."""
    rows = [np.ones(len(y_true))] if weights is None else list(weights)
    by_group = np.empty((len(rows), groups.n_groups))
    overall = np.empty(len(rows))
    for r, counts in enumerate(rows):
        index = np.repeat(np.arange(len(y_true)), counts.astype(np.int64))
        overall[r] = float(metric(y_true[index], y_pred[index]))
        codes = groups.codes[index]
        for g in range(groups.n_groups):
            member = index[codes == g]
            by_group[r, g] = float(metric(y_true[member], y_pred[member]))
    return by_group, overall

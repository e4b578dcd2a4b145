"""Checks shared by the uncertainty pillar: probabilities, logits, labels and groups.

Each check raises :class:`~trustlab.core.errors.DataError` with a message that names the
argument and says how to fix it; the messages are module constants so tests can match them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from trustlab.core.checks import check_same_length
from trustlab.core.errors import DataError
from trustlab.core.metrics.roc import to_numpy
from trustlab.core.typing import ArrayLike, FloatArray, IntArray

MSG_MATRIX_SHAPE = (
    "{name} must have shape (n_examples, n_classes) with at least 2 classes; got shape {shape}."
)
MSG_MATRIX_DTYPE = "{name} must hold numbers; got dtype {dtype}."
MSG_MATRIX_EMPTY = "{name} is empty; pass at least one example."
MSG_MATRIX_NON_FINITE = "{name} holds {what} in row {row}; every value must be a finite number."
MSG_NOT_PROBABILITIES = (
    "{name} row {row} is not a probability vector (values in [0, 1] summing to 1; this row "
    "sums to {total:.6g}). Pass softmax probabilities, e.g. torch.softmax(logits, dim=1)."
)
MSG_LABELS_SHAPE = "{name} must be 1-D with one class label per example; got shape {shape}."
MSG_LABELS_DTYPE = (
    "{name} must hold integer class labels; got dtype {dtype}. Convert with .astype(int)."
)
MSG_LABELS_RANGE = (
    "{name} must hold class indices in [0, {n_classes}) for {n_classes} classes; found "
    "{value} at index {index}."
)
MSG_GROUPS_SHAPE = "groups must be 1-D with one group per example; got shape {shape}."
MSG_GROUPS_MISSING = (
    "groups holds a missing value at index {index}; give every example a group (e.g. an "
    "explicit 'unknown' category)."
)

#: Groups as the fairness pillar takes sensitive features: one array, or a mapping of them.
GroupsLike = ArrayLike | Mapping[str, ArrayLike]

#: How far a row of probabilities may sum from 1 (float32 softmax rounding).
PROBABILITY_TOLERANCE = 1e-3


def _numeric_matrix(values: ArrayLike, *, name: str) -> FloatArray:
    """A 2-D float64 array of shape (n_examples, n_classes), n_classes >= 2 (not yet checked
    for NaN or infinities)."""
    array = to_numpy(values)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise DataError(MSG_MATRIX_DTYPE.format(name=name, dtype=array.dtype))
    if array.ndim != 2 or array.shape[1] < 2:
        raise DataError(MSG_MATRIX_SHAPE.format(name=name, shape=array.shape))
    if array.shape[0] == 0:
        raise DataError(MSG_MATRIX_EMPTY.format(name=name))
    matrix: FloatArray = np.asarray(array, dtype=np.float64)
    return matrix


def as_matrix(values: ArrayLike, *, name: str) -> FloatArray:
    """A finite 2-D float64 array of shape (n_examples, n_classes), n_classes >= 2."""
    matrix = _numeric_matrix(values, name=name)
    if not np.isfinite(matrix).all():
        row = int(np.argmin(np.isfinite(matrix).all(axis=1)))
        what = "NaN" if np.isnan(matrix[row]).any() else "an infinity"
        raise DataError(MSG_MATRIX_NON_FINITE.format(name=name, what=what, row=row))
    return matrix


def as_probabilities(values: ArrayLike, *, name: str = "probs") -> FloatArray:
    """Check that every row is a probability vector and return the matrix as float64.

    Valid input passes in three reductions: the minimum, the maximum (both NaN if any entry
    is NaN, so ``0 <= min`` and ``max <= 1`` also rule out NaN and infinities) and the row
    sums as one matrix-vector product. Only invalid input takes the slower path that finds
    the first bad row for the message.
    """
    matrix = _numeric_matrix(values, name=name)
    totals = matrix @ np.ones(matrix.shape[1])
    if (
        matrix.min() >= 0.0
        and matrix.max() <= 1.0
        and np.abs(totals - 1.0).max() <= PROBABILITY_TOLERANCE
    ):
        return matrix
    matrix = as_matrix(matrix, name=name)
    totals = matrix.sum(axis=1)
    valid = (
        (matrix >= 0).all(axis=1)
        & (matrix <= 1).all(axis=1)
        & (np.abs(totals - 1.0) <= PROBABILITY_TOLERANCE)
    )
    row = int(np.argmin(valid))
    raise DataError(MSG_NOT_PROBABILITIES.format(name=name, row=row, total=totals[row]))


def as_labels(values: ArrayLike, *, n_classes: int, n_examples: int, name: str = "y") -> IntArray:
    """Check class labels against ``n_classes`` and ``n_examples``; return them as int64."""
    array = to_numpy(values)
    if array.ndim != 1:
        raise DataError(MSG_LABELS_SHAPE.format(name=name, shape=array.shape))
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise DataError(MSG_LABELS_DTYPE.format(name=name, dtype=array.dtype))
    check_same_length(first=name, n_first=len(array), second="the scores", n_second=n_examples)
    labels = array.astype(np.int64)
    inside = (labels >= 0) & (labels < n_classes)
    if not inside.all():
        index = int(np.argmin(inside))
        raise DataError(
            MSG_LABELS_RANGE.format(
                name=name, n_classes=n_classes, value=int(labels[index]), index=index
            )
        )
    return labels


def _one_attribute(values: np.ndarray, *, n_examples: int) -> tuple[IntArray, list[str]]:
    if values.ndim != 1:
        raise DataError(MSG_GROUPS_SHAPE.format(shape=values.shape))
    check_same_length(first="groups", n_first=len(values), second="the scores", n_second=n_examples)
    if values.dtype == object:
        missing = np.array([item is None or item != item for item in values.tolist()], dtype=bool)
        if missing.any():
            raise DataError(MSG_GROUPS_MISSING.format(index=int(np.argmax(missing))))
        values = values.astype(str)
    elif np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
        raise DataError(MSG_GROUPS_MISSING.format(index=int(np.argmax(np.isnan(values)))))
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), [str(value) for value in uniques.tolist()]


def as_group_codes(values: GroupsLike, *, n_examples: int) -> tuple[IntArray, tuple[str, ...]]:
    """One integer code per example and the group names, ordered by the groups' values.

    ``values`` takes the fairness pillar's forms of sensitive features: a 1-D array of codes
    or strings (groups named by their values), a mapping ``{"sex": ..., "race": ...}`` or a
    2-D array with one column per attribute (intersectional groups, one per observed
    combination, named ``"sex=Female, race=Black"`` or ``"sensitive_feature_0=..., ..."``).
    """
    if isinstance(values, Mapping):
        columns = {name: to_numpy(column) for name, column in values.items()}
    else:
        array = to_numpy(values)
        if array.ndim != 2:
            single, labels = _one_attribute(array, n_examples=n_examples)
            return single, tuple(labels)
        columns = {f"sensitive_feature_{j}": array[:, j] for j in range(array.shape[1])}
    if not columns:
        raise DataError(MSG_GROUPS_SHAPE.format(shape="an empty mapping"))
    parts = [
        (name, *_one_attribute(column, n_examples=n_examples)) for name, column in columns.items()
    ]
    combined = np.stack([codes for _, codes, _ in parts], axis=1)
    observed, inverse = np.unique(combined, axis=0, return_inverse=True)
    names = tuple(
        ", ".join(f"{name}={labels[k]}" for (name, _, labels), k in zip(parts, row, strict=True))
        for row in observed.tolist()
    )
    return inverse.reshape(-1).astype(np.int64), names


def softmax(logits: FloatArray) -> FloatArray:
    """Row-wise softmax in float64, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: FloatArray = exp / exp.sum(axis=1, keepdims=True)
    return out


def as_float_tensor(values: ArrayLike) -> torch.Tensor:
    """``values`` as a float32 CPU tensor (no checks)."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().float()
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))

"""Checks shared by the fairness metrics and mitigations: sensitive features, labels, scores.

Sensitive features come in three forms and always end as one integer group code per example:

* a 1-D array (NumPy, torch, list, pandas Series) of codes or strings: one group per value,
  named by the value (``"Female"``, ``"1"``);
* a mapping ``{"sex": ..., "race": ...}`` of 1-D arrays: intersectional groups, one per observed
  combination, named ``"sex=Female, race=Black"``;
* a 2-D array of shape (n_examples, n_attributes): intersectional groups named
  ``"sensitive_feature_0=..., sensitive_feature_1=..."``.

Groups are ordered by their values (codes before strings sort as NumPy sorts them); only
combinations that occur are groups.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from trustlab.core.checks import check_same_length
from trustlab.core.errors import DataError
from trustlab.core.metrics.roc import to_numpy
from trustlab.core.typing import ArrayLike, FloatArray, IntArray

MSG_SF_SHAPE = (
    "sensitive_features must be a 1-D array (one group per example), a 2-D array of shape "
    "(n_examples, n_attributes) or a mapping of attribute names to 1-D arrays; got shape {shape}."
)
MSG_SF_MAPPING_EMPTY = "sensitive_features is an empty mapping; name at least one attribute."
MSG_SF_ATTRIBUTE_SHAPE = (
    "sensitive_features[{name!r}] must be 1-D with one group per example; got shape {shape}."
)
MSG_SF_EMPTY = "sensitive_features is empty; pass one group per example."
MSG_SF_MISSING = (
    "{name} holds a missing value ({what}) at index {index}; give every example a group "
    "(e.g. an explicit 'unknown' category)."
)
MSG_ONE_GROUP = (
    "{name} has a single group ({group!r}); fairness compares at least two groups. Pass an "
    "attribute that takes two or more values on these examples."
)
MSG_LABELS_SHAPE = "{name} must be 1-D with one class label per example; got shape {shape}."
MSG_LABELS_EMPTY = "{name} is empty; pass at least one example."
MSG_LABELS_DTYPE = (
    "{name} must hold integer class labels (or bools); got dtype {dtype}. Encode the labels as "
    "0, 1, ... first."
)
MSG_LABELS_NAN = "{name} holds {what} at index {index}; every label must be a finite class code."
MSG_LABELS_FRACTIONAL = (
    "{name} holds the non-integer value {value!r} at index {index}; it looks like scores or "
    "probabilities. Pass hard class predictions, e.g. (scores >= 0.5).astype(int)."
)
MSG_SCORES_SHAPE = (
    "{name} must have shape (n_examples,) or (n_examples, n_classes); got shape {shape}."
)
MSG_SCORES_DTYPE = "{name} must hold numbers; got dtype {dtype}."
MSG_SCORES_NAN = "{name} holds {what} at index {index}; every score must be a finite number."


@dataclass(frozen=True)
class Groups:
    """Examples mapped to sensitive groups.

    Attributes
    ----------
    codes : ndarray of int64, shape (n_examples,)
        The group index of every example, in ``[0, len(names))``.
    names : tuple of str
        ``names[k]`` names group ``k``.
    """

    codes: IntArray
    names: tuple[str, ...]

    @property
    def n_groups(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return int(self.codes.shape[0])


def _missing_index(column: np.ndarray) -> tuple[int, str] | None:
    if column.dtype.kind in "fc":
        bad = ~np.isfinite(column)
        if bad.any():
            index = int(np.argmax(bad))
            return index, "NaN" if np.isnan(column[index]) else "an infinity"
        return None
    if column.dtype == object:
        for index, value in enumerate(column):
            if value is None:
                return index, "None"
            if isinstance(value, float) and not np.isfinite(value):
                return index, "NaN"
    return None


def _value_name(value: object) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def group_name(values: Mapping[str, object]) -> str:
    """The name of one (intersectional) group from the value of each sensitive attribute.

    Every part reads ``attribute=value``, in the order of ``values``, joined by ``", "``; an
    attribute named ``""`` (a single unnamed attribute) contributes its bare value. Whole
    floats are written as ints and NumPy scalars as Python values. This is the one naming of
    groups in trustlab: :class:`~trustlab.fairness.GroupMetrics`, the fairness metrics, the
    mitigations and the fairness task kind all use it.

    Parameters
    ----------
    values : Mapping[str, object]
        Attribute name to the group's value of it.

    Returns
    -------
    str

    Examples
    --------
    >>> group_name({"sex": "Female", "race": "White"})
    'sex=Female, race=White'
    >>> group_name({"": 1.0})
    '1'
    """
    parts = []
    for key, value in values.items():
        text = _value_name(value)
        parts.append(f"{key}={text}" if key else text)
    return ", ".join(parts)


def group_names(labels: Mapping[str, Sequence[object]]) -> list[str]:
    """The names of every intersection of the attributes' values, first attribute slowest.

    With ``labels = {"sex": [...2 values], "race": [...5 values]}`` the name of position
    ``5 * sex + race`` is :func:`group_name` of that combination, so the list matches mixed-
    radix group codes built from per-attribute codes in the same order.

    Parameters
    ----------
    labels : Mapping[str, Sequence[object]]
        Attribute name to the names of its values, in code order.

    Returns
    -------
    list of str
        ``prod(len(v) for v in labels.values())`` names.

    Examples
    --------
    >>> group_names({"sex": ["Female", "Male"], "race": ["Black", "White"]})[:3]
    ['sex=Female, race=Black', 'sex=Female, race=White', 'sex=Male, race=Black']
    >>> group_names({"sex": ["Female", "Male"]})
    ['sex=Female', 'sex=Male']
    """
    keys = list(labels)
    return [
        group_name(dict(zip(keys, combination, strict=True)))
        for combination in itertools.product(*(labels[key] for key in keys))
    ]


def _column(values: ArrayLike, *, name: str) -> np.ndarray:
    column = to_numpy(values)
    if column.ndim != 1:
        raise DataError(MSG_SF_ATTRIBUTE_SHAPE.format(name=name, shape=column.shape))
    missing = _missing_index(column)
    if missing is not None:
        raise DataError(
            MSG_SF_MISSING.format(
                name=f"sensitive_features[{name!r}]", what=missing[1], index=missing[0]
            )
        )
    if column.dtype == object:
        column = column.astype(str)
    return column


def as_groups(
    sensitive_features: ArrayLike | Mapping[str, ArrayLike],
    *,
    n_examples: int | None = None,
    other: str = "y_pred",
    min_groups: int = 2,
) -> Groups:
    """Check ``sensitive_features`` and return the group of every example.

    Parameters
    ----------
    sensitive_features : array-like or mapping of str to array-like
        See the module docstring for the accepted forms.
    n_examples : int, optional
        The number of examples the other inputs hold; checked against.
    other : str, default "y_pred"
        The name of the argument ``n_examples`` comes from, for the error message.
    min_groups : int, default 2
        Fewer distinct groups raise :class:`DataError`.

    Raises
    ------
    DataError
        On a wrong shape, a missing value (NaN, None), a length that differs from
        ``n_examples`` or fewer than ``min_groups`` groups.
    """
    if isinstance(sensitive_features, Mapping):
        if not sensitive_features:
            raise DataError(MSG_SF_MAPPING_EMPTY)
        columns = {
            str(key): _column(values, name=str(key)) for key, values in sensitive_features.items()
        }
    else:
        array = to_numpy(sensitive_features)
        if array.ndim == 1:
            missing = _missing_index(array)
            if missing is not None:
                raise DataError(
                    MSG_SF_MISSING.format(
                        name="sensitive_features", what=missing[1], index=missing[0]
                    )
                )
            columns = {"": array.astype(str) if array.dtype == object else array}
        elif array.ndim == 2:
            columns = {
                f"sensitive_feature_{j}": _column(array[:, j], name=f"sensitive_feature_{j}")
                for j in range(array.shape[1])
            }
        else:
            raise DataError(MSG_SF_SHAPE.format(shape=array.shape))
    first_key, first = next(iter(columns.items()))
    for key, column in columns.items():
        check_same_length(
            first=f"sensitive_features[{key!r}]",
            n_first=len(column),
            second=f"sensitive_features[{first_key!r}]",
            n_second=len(first),
        )
    if len(first) == 0:
        raise DataError(MSG_SF_EMPTY)
    if n_examples is not None:
        check_same_length(
            first=other, n_first=n_examples, second="sensitive_features", n_second=len(first)
        )

    uniques: list[np.ndarray] = []
    inverses: list[np.ndarray] = []
    for column in columns.values():
        unique, inverse = np.unique(column, return_inverse=True)
        uniques.append(unique)
        inverses.append(inverse.reshape(-1))
    stacked = np.stack(inverses, axis=1)
    combos, codes = np.unique(stacked, axis=0, return_inverse=True)
    names = [
        group_name(
            {key: unique[index] for key, unique, index in zip(columns, uniques, combo, strict=True)}
        )
        for combo in combos
    ]
    if len(names) < min_groups:
        raise DataError(MSG_ONE_GROUP.format(name="sensitive_features", group=names[0]))
    return Groups(codes=codes.reshape(-1).astype(np.int64), names=tuple(names))


def as_class_labels(values: ArrayLike, *, name: str) -> IntArray:
    """Check 1-D class labels and return them as int64.

    Integer and bool arrays pass; float arrays pass if every value is a whole number.

    Raises
    ------
    DataError
        If ``values`` is not 1-D, is empty, is not numeric, or holds NaN, an infinity or a
        fractional value (the message gives the index).
    """
    array = to_numpy(values)
    if array.ndim != 1:
        raise DataError(MSG_LABELS_SHAPE.format(name=name, shape=array.shape))
    if array.shape[0] == 0:
        raise DataError(MSG_LABELS_EMPTY.format(name=name))
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(MSG_LABELS_DTYPE.format(name=name, dtype=array.dtype))
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        what = "NaN" if np.isnan(array[index]) else "an infinity"
        raise DataError(MSG_LABELS_NAN.format(name=name, what=what, index=index))
    whole = array == np.round(array)
    if not whole.all():
        index = int(np.argmin(whole))
        raise DataError(
            MSG_LABELS_FRACTIONAL.format(name=name, value=float(array[index]), index=index)
        )
    return array.astype(np.int64)


def as_scores(values: ArrayLike, *, name: str, n_examples: int | None) -> FloatArray:
    """Check finite scores of shape (n,) or (n, n_classes) and return them as float64.

    ``n_examples``, when given, is the length of ``y_true`` the scores must match.
    """
    array = to_numpy(values)
    if array.ndim not in (1, 2):
        raise DataError(MSG_SCORES_SHAPE.format(name=name, shape=array.shape))
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise DataError(MSG_SCORES_DTYPE.format(name=name, dtype=array.dtype))
    if array.shape[0] == 0:
        raise DataError(MSG_LABELS_EMPTY.format(name=name))
    if n_examples is not None:
        check_same_length(first=name, n_first=array.shape[0], second="y_true", n_second=n_examples)
    scores = array.astype(np.float64)
    finite = np.isfinite(scores).reshape(scores.shape[0], -1).all(axis=1)
    if not finite.all():
        index = int(np.argmin(finite))
        what = "NaN" if np.isnan(scores[index]).any() else "an infinity"
        raise DataError(MSG_SCORES_NAN.format(name=name, what=what, index=index))
    return scores

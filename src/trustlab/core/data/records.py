"""The records every loader returns: :class:`ImageDataset` and :class:`TabularDataset`.

Both are frozen dataclasses of numpy arrays that check their own shapes, dtypes and values when
they are built, so code that receives one never has to check again. Arrays are stored as given
(no copy); treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from trustlab.core.errors import DataError

MSG_NOT_ARRAY = "{record} {name!r}: {field} must be a numpy array. Got {got} instead."
MSG_DTYPE = "{record} {name!r}: {field} must have dtype {want}. Got {got} instead."
MSG_NDIM = "{record} {name!r}: {field} must have shape {want}. Got shape {got} instead."
MSG_EMPTY = "{record} {name!r}: the data set is empty (0 rows)."
MSG_LENGTH = (
    "{record} {name!r}: {field} has {got} rows but x has {n}; every array needs one row per sample."
)
MSG_NOT_FINITE = "{record} {name!r}: x holds {count} NaN or infinite value(s)."
MSG_RANGE = (
    "{record} {name!r}: pixel values must lie in [0, 1]. Got values in [{lo}, {hi}] instead;"
    " divide 8-bit images by 255."
)
MSG_LABEL_RANGE = (
    "{record} {name!r}: {field} holds codes in [{lo}, {hi}] but only {k} label(s) are named,"
    " so codes must lie in [0, {top}]."
)
MSG_NAMES = "{record} {name!r}: {field} has {got} entries but x has {want} feature column(s)."
MSG_SENSITIVE_KEYS = (
    "{record} {name!r}: sensitive and sensitive_labels must name the same attributes."
    " Got {codes} and {labels} instead."
)
MSG_NO_LABELS = "{record} {name!r}: {field} must name at least one label."


def _check_array(
    record: str, name: str, field: str, value: object, dtype: type[np.generic], ndim: int, want: str
) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise DataError(
            MSG_NOT_ARRAY.format(record=record, name=name, field=field, got=type(value).__name__)
        )
    if value.dtype != np.dtype(dtype):
        raise DataError(
            MSG_DTYPE.format(
                record=record, name=name, field=field, want=np.dtype(dtype).name, got=value.dtype
            )
        )
    if value.ndim != ndim:
        raise DataError(
            MSG_NDIM.format(record=record, name=name, field=field, want=want, got=value.shape)
        )
    return value


def _check_codes(
    record: str,
    name: str,
    field: str,
    codes: np.ndarray,
    labels: Sequence[str],
    labels_field: str,
) -> None:
    if len(labels) == 0:
        raise DataError(MSG_NO_LABELS.format(record=record, name=name, field=labels_field))
    lo, hi = int(codes.min()), int(codes.max())
    if lo < 0 or hi >= len(labels):
        raise DataError(
            MSG_LABEL_RANGE.format(
                record=record,
                name=name,
                field=field,
                lo=lo,
                hi=hi,
                k=len(labels),
                top=len(labels) - 1,
            )
        )


def _check_finite(record: str, name: str, x: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise DataError(MSG_NOT_FINITE.format(record=record, name=name, count=bad))


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with integer class labels.

    Parameters
    ----------
    name : str
        Short name of the data set ("digits", "cifar10", ...).
    x : np.ndarray of float32, shape (N, C, H, W)
        Pixel values in [0, 1], channels first (the PyTorch layout).
    y : np.ndarray of int64, shape (N,)
        Class codes in ``[0, len(classes))``.
    classes : list of str
        ``classes[k]`` names class code ``k``.

    Raises
    ------
    DataError
        If a shape, dtype or value is wrong; the message says which.

    Examples
    --------
    >>> import numpy as np
    >>> ds = ImageDataset(
    ...     name="tiny",
    ...     x=np.zeros((2, 1, 4, 4), np.float32),
    ...     y=np.array([0, 1]),
    ...     classes=["a", "b"],
    ... )
    >>> len(ds), ds.x.shape
    (2, (2, 1, 4, 4))
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: list[str]

    def __post_init__(self) -> None:
        record = type(self).__name__
        x = _check_array(record, self.name, "x", self.x, np.float32, 4, "(N, C, H, W)")
        y = _check_array(record, self.name, "y", self.y, np.int64, 1, "(N,)")
        if x.shape[0] == 0:
            raise DataError(MSG_EMPTY.format(record=record, name=self.name))
        if y.shape[0] != x.shape[0]:
            raise DataError(
                MSG_LENGTH.format(record=record, name=self.name, field="y", got=len(y), n=len(x))
            )
        _check_finite(record, self.name, x)
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(MSG_RANGE.format(record=record, name=self.name, lo=lo, hi=hi))
        _check_codes(record, self.name, "y", y, self.classes, "classes")

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True, eq=False)
class TabularDataset:
    """Rows of encoded features with a label and the sensitive attributes of each row.

    Parameters
    ----------
    name : str
        Short name of the data set ("adult", "german", "compas").
    x : np.ndarray of float32, shape (N, D)
        Encoded features (standardized numbers and one-hot categories).
    y : np.ndarray of int64, shape (N,)
        Label codes in ``[0, len(label_names))``.
    sensitive : dict of str to np.ndarray of int64, shape (N,)
        Group code of every row for each sensitive attribute.
    sensitive_labels : dict of str to list of str
        ``sensitive_labels[attr][k]`` names group code ``k`` of ``attr``.
    feature_names : list of str
        Name of each of the D columns of ``x``.
    label_names : list of str
        ``label_names[k]`` names label code ``k``.
    split : str
        Which part of the data this is ("train", "test" or "all").

    Raises
    ------
    DataError
        If a shape, dtype or value is wrong; the message says which.

    Examples
    --------
    >>> import numpy as np
    >>> ds = TabularDataset(
    ...     name="tiny",
    ...     x=np.zeros((3, 2), np.float32),
    ...     y=np.array([0, 1, 1]),
    ...     sensitive={"sex": np.array([0, 1, 0])},
    ...     sensitive_labels={"sex": ["Female", "Male"]},
    ...     feature_names=["a", "b"],
    ...     label_names=["no", "yes"],
    ...     split="all",
    ... )
    >>> len(ds)
    3
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    sensitive: dict[str, np.ndarray]
    sensitive_labels: dict[str, list[str]]
    feature_names: list[str]
    label_names: list[str]
    split: str

    def __post_init__(self) -> None:
        record = type(self).__name__
        x = _check_array(record, self.name, "x", self.x, np.float32, 2, "(N, D)")
        y = _check_array(record, self.name, "y", self.y, np.int64, 1, "(N,)")
        n = x.shape[0]
        if n == 0:
            raise DataError(MSG_EMPTY.format(record=record, name=self.name))
        if y.shape[0] != n:
            raise DataError(
                MSG_LENGTH.format(record=record, name=self.name, field="y", got=len(y), n=n)
            )
        _check_finite(record, self.name, x)
        if len(self.feature_names) != x.shape[1]:
            raise DataError(
                MSG_NAMES.format(
                    record=record,
                    name=self.name,
                    field="feature_names",
                    got=len(self.feature_names),
                    want=x.shape[1],
                )
            )
        _check_codes(record, self.name, "y", y, self.label_names, "label_names")
        if set(self.sensitive) != set(self.sensitive_labels):
            raise DataError(
                MSG_SENSITIVE_KEYS.format(
                    record=record,
                    name=self.name,
                    codes=sorted(self.sensitive),
                    labels=sorted(self.sensitive_labels),
                )
            )
        for attr, codes in self.sensitive.items():
            field = f"sensitive[{attr!r}]"
            codes = _check_array(record, self.name, field, codes, np.int64, 1, "(N,)")
            if codes.shape[0] != n:
                raise DataError(
                    MSG_LENGTH.format(
                        record=record, name=self.name, field=field, got=len(codes), n=n
                    )
                )
            _check_codes(
                record,
                self.name,
                field,
                codes,
                self.sensitive_labels[attr],
                f"sensitive_labels[{attr!r}]",
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])


Dataset: TypeAlias = ImageDataset | TabularDataset
"""What a registered loader returns."""

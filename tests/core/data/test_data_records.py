"""ImageDataset and TabularDataset validate themselves on construction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from trustlab.core.data import ImageDataset, TabularDataset
from trustlab.core.errors import DataError


def _image(**changes: Any) -> ImageDataset:
    fields: dict[str, Any] = {
        "name": "tiny",
        "x": np.full((3, 1, 2, 2), 0.5, np.float32),
        "y": np.array([0, 1, 1], np.int64),
        "classes": ["a", "b"],
    }
    fields.update(changes)
    return ImageDataset(**fields)


def _table(**changes: Any) -> TabularDataset:
    fields: dict[str, Any] = {
        "name": "tiny",
        "x": np.zeros((3, 2), np.float32),
        "y": np.array([0, 1, 1], np.int64),
        "sensitive": {"sex": np.array([0, 1, 0], np.int64)},
        "sensitive_labels": {"sex": ["Female", "Male"]},
        "feature_names": ["a", "b"],
        "label_names": ["no", "yes"],
        "split": "all",
    }
    fields.update(changes)
    return TabularDataset(**fields)


def test_valid_records_have_a_length() -> None:
    assert len(_image()) == 3
    assert len(_table()) == 3


def test_records_are_frozen() -> None:
    ds = _image()
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x": np.zeros((3, 1, 2, 2), np.float64)}, "x must have dtype float32. Got float64"),
        ({"x": np.zeros((3, 4), np.float32)}, "x must have shape (N, C, H, W)"),
        ({"x": [[0.0]]}, "x must be a numpy array. Got list"),
        ({"y": np.array([0, 1, 1], np.int32)}, "y must have dtype int64"),
        ({"y": np.array([0, 1], np.int64)}, "y has 2 rows but x has 3"),
        ({"x": np.full((3, 1, 2, 2), 2.0, np.float32)}, "must lie in [0, 1]"),
        ({"x": np.full((3, 1, 2, 2), np.nan, np.float32)}, "12 NaN or infinite"),
        ({"y": np.array([0, 1, 2], np.int64)}, "codes must lie in [0, 1]"),
        ({"x": np.zeros((0, 1, 2, 2), np.float32), "y": np.zeros(0, np.int64)}, "is empty"),
    ],
)
def test_image_dataset_rejects_bad_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError) as err:
        _image(**changes)
    assert message in str(err.value)
    assert "'tiny'" in str(err.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x": np.zeros((3, 2), np.float64)}, "x must have dtype float32"),
        ({"x": np.zeros((3, 2, 1), np.float32)}, "x must have shape (N, D)"),
        ({"x": np.array([[0, np.inf]] * 3, np.float32)}, "3 NaN or infinite"),
        ({"feature_names": ["a"]}, "feature_names has 1 entries but x has 2"),
        ({"y": np.array([0, 1, 5], np.int64)}, "y holds codes in [0, 5]"),
        ({"label_names": []}, "label_names must name at least one label"),
        ({"sensitive_labels": {"race": ["a"]}}, "must name the same attributes"),
        ({"sensitive": {"sex": np.array([0, 1], np.int64)}}, "sensitive['sex'] has 2 rows"),
        ({"sensitive": {"sex": np.array([0, 1, 0], np.int32)}}, "sensitive['sex'] must have"),
        ({"sensitive": {"sex": np.array([0, 1, 2], np.int64)}}, "sensitive['sex'] holds codes"),
    ],
)
def test_tabular_dataset_rejects_bad_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError) as err:
        _table(**changes)
    assert message in str(err.value)

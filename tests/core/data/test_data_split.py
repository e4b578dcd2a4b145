"""train_test_split_indices is deterministic, disjoint and stratifies."""

from __future__ import annotations

import numpy as np
import pytest

from trustlab.core.data import train_test_split_indices
from trustlab.core.data.split import MSG_FRACTION
from trustlab.core.errors import ConfigurationError


def test_split_covers_all_rows_once_and_is_sorted() -> None:
    train, test = train_test_split_indices(101, test_fraction=0.25, seed=3)
    assert len(test) == 25
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(101))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_split_is_deterministic_and_depends_on_seed() -> None:
    first = train_test_split_indices(50, test_fraction=0.3, seed=0)
    again = train_test_split_indices(50, test_fraction=0.3, seed=0)
    other = train_test_split_indices(50, test_fraction=0.3, seed=1)
    assert np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_known_split_does_not_change_between_numpy_versions() -> None:
    # PCG64 streams are stable across numpy versions; this pins the rule.
    _, test = train_test_split_indices(10, test_fraction=0.3, seed=0)
    expected = np.sort(np.random.default_rng(0).permutation(10)[:3])
    assert np.array_equal(test, expected)


def test_stratified_split_keeps_group_shares() -> None:
    groups = np.array([0] * 70 + [1] * 30)
    train, test = train_test_split_indices(100, test_fraction=0.3, seed=0, stratify=groups)
    assert len(test) == 30
    assert groups[test].sum() == 9  # 30% of the 30 ones
    assert groups[train].sum() == 21


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction_is_refused(fraction: float) -> None:
    with pytest.raises(ConfigurationError) as err:
        train_test_split_indices(10, test_fraction=fraction, seed=0)
    assert str(err.value) == MSG_FRACTION.format(got=fraction)


def test_bad_n_stratify_and_empty_parts_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="'n' parameter"):
        train_test_split_indices(1, test_fraction=0.5, seed=0)
    with pytest.raises(ConfigurationError, match="length n=10"):
        train_test_split_indices(10, test_fraction=0.5, seed=0, stratify=np.zeros(9))
    with pytest.raises(ConfigurationError, match="leaves the test part empty"):
        train_test_split_indices(3, test_fraction=0.1, seed=0)

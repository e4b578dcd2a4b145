"""Deterministic train/test splits of row indices."""

from __future__ import annotations

import math

import numpy as np

from trustlab.core.errors import ConfigurationError

MSG_N = "The 'n' parameter of train_test_split_indices must be an int >= 2. Got {got!r} instead."
MSG_FRACTION = (
    "The 'test_fraction' parameter of train_test_split_indices must be a float in (0, 1)."
    " Got {got!r} instead."
)
MSG_STRATIFY_SHAPE = (
    "The 'stratify' parameter of train_test_split_indices must be a 1-D array of length n={n}."
    " Got shape {got} instead."
)
MSG_EMPTY_SIDE = (
    "test_fraction={fraction} of n={n} rows leaves the {side} part empty;"
    " use a test_fraction further from 0 and 1 or more rows."
)


def _n_test(n: int, fraction: float) -> int:
    """``round(fraction * n)`` with halves rounded up, the same on every platform."""
    return math.floor(fraction * n + 0.5)


def train_test_split_indices(
    n: int, *, test_fraction: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into train and test indices, the same way on every run.

    Rows are shuffled with ``np.random.default_rng(seed)``. Without ``stratify``, the test part
    has ``round(test_fraction * n)`` rows (halves rounded up). With ``stratify``, every group
    (taken in sorted order of its value) gives ``round(test_fraction * n_group)`` rows to the
    test part, so each group keeps its share in both parts.

    Parameters
    ----------
    n : int
        Number of rows, at least 2.
    test_fraction : float
        Share of rows that go to the test part, in (0, 1).
    seed : int
        Seed of the numpy generator; the same seed gives the same split.
    stratify : np.ndarray, shape (n,), optional
        Group of every row (usually the label).

    Returns
    -------
    train, test : np.ndarray of int64
        Sorted, disjoint row indices that together cover ``range(n)``.

    Raises
    ------
    ConfigurationError
        If a parameter is out of range or a part would be empty.

    Examples
    --------
    >>> train, test = train_test_split_indices(10, test_fraction=0.3, seed=0)
    >>> len(train), len(test)
    (7, 3)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ConfigurationError(MSG_N.format(got=n))
    if isinstance(test_fraction, bool) or not 0.0 < float(test_fraction) < 1.0:
        raise ConfigurationError(MSG_FRACTION.format(got=test_fraction))
    n = int(n)
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
        test = order[: _n_test(n, test_fraction)]
    else:
        groups = np.asarray(stratify)
        if groups.shape != (n,):
            raise ConfigurationError(MSG_STRATIFY_SHAPE.format(n=n, got=groups.shape))
        parts = []
        for value in np.unique(groups):
            members = np.flatnonzero(groups == value)
            members = members[rng.permutation(len(members))]
            parts.append(members[: _n_test(len(members), test_fraction)])
        test = np.concatenate(parts)
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    for side, count in (("test", int(is_test.sum())), ("train", int((~is_test).sum()))):
        if count == 0:
            raise ConfigurationError(MSG_EMPTY_SIDE.format(fraction=test_fraction, n=n, side=side))
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)

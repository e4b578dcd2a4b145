"""Tests of trustlab.core.metrics.roc: agreement with scikit-learn, the threshold rule, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sklearn.metrics
import torch

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.metrics import RocCurve, auc, roc_curve, tpr_at_fpr, tpr_at_fprs
from trustlab.core.metrics.roc import (
    MSG_FPR,
    MSG_LENGTH,
    MSG_MISSING_CLASS,
    MSG_NON_FINITE,
    MSG_NOT_1D,
    MSG_NOT_BINARY,
    MSG_NOT_NUMERIC,
)

# Six examples, three of each class, with a tie across classes at 0.7.
#   threshold  TP  FP   (FPR, TPR)
#   +inf        0   0   (0,   0)
#   0.9         1   0   (0,   1/3)
#   0.8         1   1   (1/3, 1/3)
#   0.7         2   2   (2/3, 2/3)   <- the tie is one point: TP and FP both step by one
#   0.6         3   2   (2/3, 1)
#   0.2         3   3   (1,   1)
SIX_Y = [1, 0, 1, 0, 1, 0]
SIX_SCORES = [0.9, 0.8, 0.7, 0.7, 0.6, 0.2]


def _random_case(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    scores = np.round(rng.normal(size=n) + 0.7 * y, 1)  # rounding makes many ties
    return y, scores


def test_six_point_curve_by_hand() -> None:
    curve = roc_curve(y_true=SIX_Y, scores=SIX_SCORES)
    assert isinstance(curve, RocCurve)
    np.testing.assert_allclose(curve.fpr, [0, 0, 1 / 3, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(curve.tpr, [0, 1 / 3, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 0.9, 0.8, 0.7, 0.6, 0.2])
    for array in (curve.fpr, curve.tpr, curve.thresholds):
        assert array.dtype == np.float64


@pytest.mark.parametrize(
    ("fpr", "expected"),
    [
        (0.01, 1 / 3),  # (0, 1/3) is the last point with FPR <= 0.01
        (1 / 3, 1 / 3),  # FPR exactly on a point counts (<=)
        (0.5, 1 / 3),  # the tie at 0.7 jumps FPR to 2/3: no interpolation, no tie splitting
        (2 / 3, 1.0),  # (2/3, 1) is the best point with FPR <= 2/3
        (0.99, 1.0),
    ],
)
def test_six_point_tpr_at_fpr_by_hand(fpr: float, expected: float) -> None:
    assert tpr_at_fpr(y_true=SIX_Y, scores=SIX_SCORES, fpr=fpr) == pytest.approx(expected)


def test_six_point_auc_by_hand() -> None:
    # Mann-Whitney: 0.9 beats 3 negatives; 0.7 beats 0.2, ties 0.7, loses to 0.8 (1.5);
    # 0.6 beats only 0.2 (1). (3 + 1.5 + 1) / 9 = 11/18.
    assert auc(y_true=SIX_Y, scores=SIX_SCORES) == pytest.approx(11 / 18)


def test_tpr_at_fprs_matches_single_calls_and_keeps_order() -> None:
    targets = [0.5, 0.01, 2 / 3]
    result = tpr_at_fprs(y_true=SIX_Y, scores=SIX_SCORES, fprs=targets)
    assert list(result) == targets
    for target in targets:
        assert result[target] == tpr_at_fpr(y_true=SIX_Y, scores=SIX_SCORES, fpr=target)


@pytest.mark.parametrize("seed", range(5))
def test_roc_curve_equals_sklearn_with_ties(seed: int) -> None:
    y, scores = _random_case(seed)
    assert len(np.unique(scores)) < len(scores)
    curve = roc_curve(y_true=y, scores=scores)
    fpr, tpr, thresholds = sklearn.metrics.roc_curve(y, scores, drop_intermediate=False)
    np.testing.assert_array_equal(curve.fpr, fpr)
    np.testing.assert_array_equal(curve.tpr, tpr)
    np.testing.assert_array_equal(curve.thresholds, thresholds)


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_sklearn_and_mann_whitney(seed: int) -> None:
    y, scores = _random_case(seed, n=300)
    value = auc(y_true=y, scores=scores)
    assert value == pytest.approx(sklearn.metrics.roc_auc_score(y, scores), abs=1e-12)
    positives, negatives = scores[y == 1], scores[y == 0]
    diff = positives[:, None] - negatives[None, :]
    mann_whitney = ((diff > 0) + 0.5 * (diff == 0)).mean()
    assert value == pytest.approx(mann_whitney, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_tpr_at_fpr_equals_brute_force_rule(seed: int) -> None:
    y, scores = _random_case(seed, n=200)
    n_pos, n_neg = (y == 1).sum(), (y == 0).sum()
    for target in (0.001, 0.01, 0.05, 0.1, 0.3, 0.9):
        best = 0.0
        for threshold in np.unique(scores):
            predicted = scores >= threshold
            fpr = (predicted & (y == 0)).sum() / n_neg
            if fpr <= target:
                best = max(best, (predicted & (y == 1)).sum() / n_pos)
        assert tpr_at_fpr(y_true=y, scores=scores, fpr=target) == pytest.approx(best)


def test_random_scores_give_tpr_close_to_fpr() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10_000)
    scores = rng.random(20_000)
    assert tpr_at_fpr(y_true=y, scores=scores, fpr=0.05) == pytest.approx(0.05, abs=0.01)
    assert auc(y_true=y, scores=scores) == pytest.approx(0.5, abs=0.02)


def test_perfect_and_reversed_scores() -> None:
    y = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert tpr_at_fpr(y_true=y, scores=scores, fpr=0.01) == 1.0
    assert auc(y_true=y, scores=scores) == 1.0
    assert tpr_at_fpr(y_true=y, scores=-scores, fpr=0.5) == 0.0
    assert auc(y_true=y, scores=-scores) == 0.0


def test_all_tied_scores_are_one_operating_point() -> None:
    y = [0, 1, 0, 1]
    curve = roc_curve(y_true=y, scores=[0.5] * 4)
    np.testing.assert_array_equal(curve.fpr, [0.0, 1.0])
    np.testing.assert_array_equal(curve.tpr, [0.0, 1.0])
    assert tpr_at_fpr(y_true=y, scores=[0.5] * 4, fpr=0.99) == 0.0
    assert auc(y_true=y, scores=[0.5] * 4) == 0.5


def test_accepts_lists_tensors_and_bool_labels() -> None:
    y, scores = _random_case(0, n=100)
    expected = auc(y_true=y, scores=scores)
    assert auc(y_true=y.tolist(), scores=scores.tolist()) == expected
    assert auc(y_true=torch.tensor(y), scores=torch.tensor(scores)) == expected
    assert auc(y_true=y.astype(bool), scores=scores.astype(np.float32)) == pytest.approx(expected)
    value = tpr_at_fpr(y_true=torch.tensor(y), scores=torch.tensor(scores), fpr=0.1)
    assert isinstance(value, float)


def test_length_mismatch_raises() -> None:
    message = MSG_LENGTH.format(first="y_true", second="scores", n_first=3, n_second=2)
    with pytest.raises(DataError, match=re.escape(message)):
        auc(y_true=[0, 1, 1], scores=[0.1, 0.2])


def test_not_1d_raises() -> None:
    message = MSG_NOT_1D.format(name="scores", shape=(2, 2))
    with pytest.raises(DataError, match=re.escape(message)):
        roc_curve(y_true=[0, 1, 0, 1], scores=np.zeros((2, 2)))


def test_non_binary_labels_raise_with_index() -> None:
    message = MSG_NOT_BINARY.format(name="y_true", value=2, index=2)
    with pytest.raises(DataError, match=re.escape(message)):
        auc(y_true=[0, 1, 2, 1], scores=[0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize(("label", "which"), [(1, "positive"), (0, "negative")])
def test_missing_class_is_named(label: int, which: str) -> None:
    message = MSG_MISSING_CLASS.format(name="y_true", which=which, label=label)
    with pytest.raises(DataError, match=re.escape(message)):
        auc(y_true=[1 - label] * 3, scores=[0.1, 0.2, 0.3])


@pytest.mark.parametrize(("bad", "what"), [(np.nan, "NaN"), (np.inf, "an infinity")])
def test_non_finite_score_is_reported_with_its_index(bad: float, what: str) -> None:
    y = np.tile([0, 1], 10)
    scores = np.linspace(0, 1, 20)
    scores[17] = bad
    message = MSG_NON_FINITE.format(name="scores", what=what, index=17)
    assert message.startswith(f"scores contains {what} at index 17; every score must be")
    with pytest.raises(DataError, match=re.escape(message)):
        tpr_at_fpr(y_true=y, scores=scores, fpr=0.05)


def test_non_numeric_scores_raise() -> None:
    message = MSG_NOT_NUMERIC.format(name="scores", dtype=np.dtype("<U1"))
    with pytest.raises(DataError, match=re.escape(message)):
        auc(y_true=[0, 1], scores=["a", "b"])


@pytest.mark.parametrize("fpr", [0, 1, 1.5, -0.1, float("nan"), True, "0.05"])
def test_fpr_out_of_range_raises(fpr: object) -> None:
    message = MSG_FPR.format(func="tpr_at_fpr", value=fpr)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        tpr_at_fpr(y_true=SIX_Y, scores=SIX_SCORES, fpr=fpr)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        tpr_at_fprs(y_true=SIX_Y, scores=SIX_SCORES, fprs=[0.1, fpr])  # type: ignore[list-item]

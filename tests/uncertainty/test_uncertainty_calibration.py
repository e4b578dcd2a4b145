"""Calibration metrics, temperature and vector scaling, reliability diagrams."""

from __future__ import annotations

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.uncertainty import (
    CALIBRATORS,
    TemperatureScaling,
    VectorScaling,
    brier_score,
    calibration_report,
    classwise_ece,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from trustlab.uncertainty._inputs import MSG_NOT_PROBABILITIES, softmax
from trustlab.uncertainty.calibration.base import MSG_NOT_FITTED


def _calibrated(n: int, k: int, seed: int, temperature: float = 1.0):
    """Logits and labels drawn from softmax(logits / temperature): calibrated at that T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, k))
    probs = softmax(logits / temperature)
    y = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return logits, y


def test_ece_by_hand() -> None:
    y = [0, 1, 1, 0]
    probs = [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.55, 0.45]]
    # conf .9 (correct), .7 (correct), .6 (wrong), .55 (correct); 2 bins of width .5
    # bin (0.5, 1]: mean conf .6875, acc .75
    assert expected_calibration_error(y_true=y, probs=probs, n_bins=2) == pytest.approx(0.0625)
    # 4 bins: (.5,.75]: conf (.7+.6+.55)/3, acc 2/3; (.75,1]: conf .9, acc 1
    expected = 3 / 4 * abs(1.85 / 3 - 2 / 3) + 1 / 4 * 0.1
    assert expected_calibration_error(y_true=y, probs=probs, n_bins=4) == pytest.approx(expected)
    assert maximum_calibration_error(y_true=y, probs=probs, n_bins=4) == pytest.approx(0.1)


def test_equal_mass_bins_hold_equal_counts() -> None:
    logits, y = _calibrated(1000, 5, seed=0)
    bins = reliability_bins(y_true=y, probs=softmax(logits), n_bins=10, binning="mass")
    assert bins.count.tolist() == [100] * 10


def test_calibrated_model_has_small_ece_and_overconfident_large() -> None:
    logits, y = _calibrated(20000, 5, seed=1)
    assert expected_calibration_error(y_true=y, probs=softmax(logits)) < 0.02
    assert classwise_ece(y_true=y, probs=softmax(logits)) < 0.02
    assert expected_calibration_error(y_true=y, probs=softmax(3 * logits)) > 0.05


def test_brier_and_nll_by_hand() -> None:
    probs = [[0.8, 0.2], [0.4, 0.6]]
    assert brier_score(y_true=[0, 0], probs=probs) == pytest.approx((0.08 + 0.72) / 2)
    assert negative_log_likelihood(y_true=[0, 1], probs=probs) == pytest.approx(
        -(np.log(0.8) + np.log(0.6)) / 2
    )


def test_probabilities_are_checked() -> None:
    with pytest.raises(DataError, match="row 1 is not a probability vector"):
        brier_score(y_true=[0, 1], probs=[[0.5, 0.5], [0.9, 0.9]])
    assert "softmax" in MSG_NOT_PROBABILITIES
    with pytest.raises(DataError, match="class indices in"):
        brier_score(y_true=[0, 2], probs=[[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ConfigurationError, match="'binning' parameter"):
        expected_calibration_error(y_true=[0], probs=[[0.5, 0.5]], binning="quantile")


def test_report_has_intervals_around_estimates() -> None:
    logits, y = _calibrated(400, 4, seed=2)
    report = calibration_report(y_true=y, probs=softmax(logits), n_resamples=100)
    assert set(report) == {"ece", "ece_mass", "mce", "classwise_ece", "brier", "nll"}
    for interval in report.values():
        assert np.isfinite(interval.estimate)
        assert interval.low <= interval.high


def test_temperature_scaling_recovers_the_true_temperature() -> None:
    logits, y = _calibrated(4000, 10, seed=3, temperature=2.5)
    scaler = TemperatureScaling().fit(logits=logits, y=y)
    assert scaler.temperature_ == pytest.approx(2.5, rel=0.1)
    assert scaler.nll_after_ < scaler.nll_before_
    before = expected_calibration_error(y_true=y, probs=softmax(logits))
    after = expected_calibration_error(y_true=y, probs=scaler.predict_proba(logits=logits))
    assert after < before / 3
    np.testing.assert_array_equal(
        scaler.transform(logits=logits).argmax(axis=1), logits.argmax(axis=1)
    )


def test_vector_scaling_fixes_a_class_bias() -> None:
    logits, y = _calibrated(5000, 3, seed=4)
    shifted = logits + np.array([2.0, 0.0, 0.0])
    scaler = VectorScaling().fit(logits=shifted, y=y)
    assert scaler.nll_after_ < scaler.nll_before_
    assert scaler.bias_[0] - scaler.bias_[1:].mean() == pytest.approx(-2.0, abs=0.2)


def test_calibrators_are_registered_and_refuse_use_before_fit() -> None:
    assert CALIBRATORS.names() == ["temperature", "vector"]
    for name in CALIBRATORS.names():
        calibrator = CALIBRATORS.build(name, {"max_iter": 50})
        with pytest.raises(ConfigurationError, match="not fitted yet"):
            calibrator.transform(logits=[[0.0, 1.0]])
    assert "calibration split" in MSG_NOT_FITTED
    with pytest.raises(ConfigurationError, match="'max_iter' parameter of TemperatureScaling"):
        TemperatureScaling(max_iter=0)


def test_transform_refuses_other_class_counts() -> None:
    logits, y = _calibrated(100, 3, seed=5)
    scaler = TemperatureScaling().fit(logits=logits, y=y)
    with pytest.raises(ConfigurationError, match="3 classes"):
        scaler.transform(logits=np.zeros((2, 4)))


@pytest.mark.slow
def test_reliability_diagram_writes_a_png(tmp_path) -> None:
    from trustlab.uncertainty import plot_reliability_diagram

    logits, y = _calibrated(500, 4, seed=6)
    path = plot_reliability_diagram(y_true=y, probs=softmax(logits), path=tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

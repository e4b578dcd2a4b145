"""Calibration: metrics with bootstrap intervals, post-hoc calibrators, reliability diagrams."""

from trustlab.uncertainty.calibration.base import CALIBRATORS, Calibrator
from trustlab.uncertainty.calibration.metrics import (
    ReliabilityBins,
    brier_score,
    calibration_report,
    classwise_ece,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from trustlab.uncertainty.calibration.reliability import plot_reliability_diagram
from trustlab.uncertainty.calibration.temperature import TemperatureScaling
from trustlab.uncertainty.calibration.vector import VectorScaling

__all__ = [
    "CALIBRATORS",
    "Calibrator",
    "ReliabilityBins",
    "TemperatureScaling",
    "VectorScaling",
    "brier_score",
    "calibration_report",
    "classwise_ece",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "plot_reliability_diagram",
    "reliability_bins",
]

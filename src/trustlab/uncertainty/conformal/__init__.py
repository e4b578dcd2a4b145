"""Split conformal prediction: LAC, APS and RAPS sets with marginal, class- or group-conditional
coverage, the finite-sample quantile, and coverage reports with intervals."""

from trustlab.uncertainty.conformal.aps import APS
from trustlab.uncertainty.conformal.base import CONFORMAL_METHODS, ConformalClassifier
from trustlab.uncertainty.conformal.lac import LAC
from trustlab.uncertainty.conformal.quantile import conformal_quantile, conformal_rank
from trustlab.uncertainty.conformal.raps import RAPS
from trustlab.uncertainty.conformal.report import (
    ConformalReport,
    CoverageCell,
    as_sets,
    conformal_report,
    empirical_coverage,
    mean_set_size,
)

__all__ = [
    "APS",
    "CONFORMAL_METHODS",
    "LAC",
    "RAPS",
    "ConformalClassifier",
    "ConformalReport",
    "CoverageCell",
    "as_sets",
    "conformal_quantile",
    "conformal_rank",
    "conformal_report",
    "empirical_coverage",
    "mean_set_size",
]

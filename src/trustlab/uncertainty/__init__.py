"""Uncertainty: calibration, conformal prediction, out-of-distribution detection, corruptions.

* Calibration (:mod:`trustlab.uncertainty.calibration`): ECE (equal-width and equal-mass
  bins), MCE, classwise ECE, Brier score and NLL with bootstrap intervals
  (:func:`calibration_report`); :class:`TemperatureScaling` and :class:`VectorScaling` fitted
  on a calibration split (registered in :data:`CALIBRATORS`); reliability diagrams.
* Conformal prediction (:mod:`trustlab.uncertainty.conformal`): split-conformal :class:`LAC`,
  :class:`APS` and :class:`RAPS` sets with marginal, class-conditional (Mondrian) or
  group-conditional coverage (registered in :data:`CONFORMAL_METHODS`), the finite-sample
  quantile :func:`conformal_quantile`, and :func:`conformal_report`.
* OOD detection (:mod:`trustlab.uncertainty.ood`): :class:`MSP`, :class:`MaxLogit`,
  :class:`Energy`, :class:`ODIN`, :class:`Mahalanobis` and :class:`KNN` (registered in
  :data:`OOD_DETECTORS`), each with ``fit`` and ``score`` (higher: more likely OOD), and
  :func:`ood_report` (AUROC, AUPR-in/out, FPR at 95% TPR with intervals).
* Natural corruptions (:mod:`trustlab.uncertainty.corruptions`): seeded Gaussian, shot and
  impulse noise, Gaussian blur, contrast, brightness, pixelate and JPEG at severities 1-5
  (registered in :data:`CORRUPTIONS`), and :func:`corruption_accuracy` with the mCE.
"""

from trustlab.uncertainty.calibration import (
    CALIBRATORS,
    Calibrator,
    ReliabilityBins,
    TemperatureScaling,
    VectorScaling,
    brier_score,
    calibration_report,
    classwise_ece,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    plot_reliability_diagram,
    reliability_bins,
)
from trustlab.uncertainty.conformal import (
    APS,
    CONFORMAL_METHODS,
    LAC,
    RAPS,
    ConformalClassifier,
    ConformalReport,
    CoverageCell,
    as_sets,
    conformal_quantile,
    conformal_rank,
    conformal_report,
    empirical_coverage,
    mean_set_size,
)
from trustlab.uncertainty.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    CorruptionReport,
    corrupt,
    corruption_accuracy,
)
from trustlab.uncertainty.ood import (
    KNN,
    MSP,
    ODIN,
    OOD_DETECTORS,
    Energy,
    Mahalanobis,
    MaxLogit,
    ModelOutputs,
    OODDetector,
    aupr_in,
    aupr_out,
    auroc,
    feature_module,
    fpr_at_tpr,
    model_outputs,
    ood_report,
)

__all__ = [
    "APS",
    "CALIBRATORS",
    "CONFORMAL_METHODS",
    "CORRUPTIONS",
    "KNN",
    "LAC",
    "MSP",
    "ODIN",
    "OOD_DETECTORS",
    "RAPS",
    "SEVERITIES",
    "Calibrator",
    "ConformalClassifier",
    "ConformalReport",
    "CorruptionReport",
    "CoverageCell",
    "Energy",
    "Mahalanobis",
    "MaxLogit",
    "ModelOutputs",
    "OODDetector",
    "ReliabilityBins",
    "TemperatureScaling",
    "VectorScaling",
    "as_sets",
    "aupr_in",
    "aupr_out",
    "auroc",
    "brier_score",
    "calibration_report",
    "classwise_ece",
    "conformal_quantile",
    "conformal_rank",
    "conformal_report",
    "corrupt",
    "corruption_accuracy",
    "empirical_coverage",
    "expected_calibration_error",
    "feature_module",
    "fpr_at_tpr",
    "maximum_calibration_error",
    "mean_set_size",
    "model_outputs",
    "negative_log_likelihood",
    "ood_report",
    "plot_reliability_diagram",
    "reliability_bins",
]

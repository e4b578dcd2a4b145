"""Out-of-distribution detection: MSP, MaxLogit, energy, ODIN, Mahalanobis and kNN detectors
(``fit`` on in-distribution data, ``score``: higher means more likely OOD), and their metrics
with bootstrap intervals."""

from trustlab.uncertainty.ood.base import (
    OOD_DETECTORS,
    ModelOutputs,
    OODDetector,
    feature_module,
    model_outputs,
)
from trustlab.uncertainty.ood.energy import Energy
from trustlab.uncertainty.ood.knn import KNN
from trustlab.uncertainty.ood.mahalanobis import Mahalanobis
from trustlab.uncertainty.ood.maxlogit import MaxLogit
from trustlab.uncertainty.ood.metrics import aupr_in, aupr_out, auroc, fpr_at_tpr, ood_report
from trustlab.uncertainty.ood.msp import MSP
from trustlab.uncertainty.ood.odin import ODIN

__all__ = [
    "KNN",
    "MSP",
    "ODIN",
    "OOD_DETECTORS",
    "Energy",
    "Mahalanobis",
    "MaxLogit",
    "ModelOutputs",
    "OODDetector",
    "aupr_in",
    "aupr_out",
    "auroc",
    "feature_module",
    "fpr_at_tpr",
    "model_outputs",
    "ood_report",
]

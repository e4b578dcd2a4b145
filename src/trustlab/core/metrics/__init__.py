"""Metrics with confidence intervals: ROC curve, AUC, TPR at a fixed FPR, bootstrap intervals."""

from trustlab.core.metrics.bootstrap import ConfidenceInterval, bootstrap_ci
from trustlab.core.metrics.roc import RocCurve, auc, roc_curve, tpr_at_fpr, tpr_at_fprs

__all__ = [
    "ConfidenceInterval",
    "RocCurve",
    "auc",
    "bootstrap_ci",
    "roc_curve",
    "tpr_at_fpr",
    "tpr_at_fprs",
]

"""Privacy attacks: membership inference against trained models.

Attacks return one score per example, higher meaning more likely a training-set member; score
them with :func:`trustlab.core.metrics.tpr_at_fpr` and :func:`trustlab.core.metrics.auc`.
"""

from trustlab.privacy.base import MembershipInferenceAttack
from trustlab.privacy.loss_threshold import LossThresholdAttack

__all__ = ["LossThresholdAttack", "MembershipInferenceAttack"]

"""Privacy attacks: membership inference against trained models.

Attacks return one score per example, higher meaning more likely a training-set member; score
them with :func:`trustlab.core.metrics.tpr_at_fpr` and :func:`trustlab.core.metrics.auc`.
Every attack is registered in :data:`MEMBERSHIP_ATTACKS` by name (``"loss_threshold"``).
"""

from trustlab.privacy.base import MEMBERSHIP_ATTACKS, MembershipInferenceAttack
from trustlab.privacy.loss_threshold import LossThresholdAttack

__all__ = ["MEMBERSHIP_ATTACKS", "LossThresholdAttack", "MembershipInferenceAttack"]

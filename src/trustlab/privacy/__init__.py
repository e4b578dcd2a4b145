"""Privacy attacks: membership inference against trained models.

Attacks return one score per example, higher meaning more likely a training-set member; score
them with :func:`membership_report` (AUC, TPR at low FPRs and membership advantage with
bootstrap intervals) and draw them with :func:`plot_roc`. Every attack is registered in
:data:`MEMBERSHIP_ATTACKS` by name: ``"loss_threshold"``, ``"calibrated_loss"``, ``"shadow"``,
``"lira"``, ``"rmia"``, ``"label_only"``. The attacks that compare the target with reference
models take a :class:`ReferenceModels` set, trained once and reused.

Defence and audit: :class:`DPSGD` trains a registered architecture with DP-SGD through Opacus
(the ``dp`` extra), and :mod:`trustlab.privacy.audit` lower-bounds the epsilon a training run
actually spent.
"""

from trustlab.privacy.augment import AUGMENTATIONS
from trustlab.privacy.base import MEMBERSHIP_ATTACKS, MembershipInferenceAttack
from trustlab.privacy.calibrated_loss import CalibratedLossAttack
from trustlab.privacy.dp import DPSGD, DPReport
from trustlab.privacy.label_only import LabelOnlyAttack
from trustlab.privacy.lira import LiRA
from trustlab.privacy.loss_threshold import LossThresholdAttack
from trustlab.privacy.metrics import MembershipReport, membership_advantage, membership_report
from trustlab.privacy.plots import plot_roc
from trustlab.privacy.reference import ReferenceModels
from trustlab.privacy.rmia import RMIA
from trustlab.privacy.shadow import ShadowModelAttack

__all__ = [
    "AUGMENTATIONS",
    "DPSGD",
    "MEMBERSHIP_ATTACKS",
    "RMIA",
    "CalibratedLossAttack",
    "DPReport",
    "LabelOnlyAttack",
    "LiRA",
    "LossThresholdAttack",
    "MembershipInferenceAttack",
    "MembershipReport",
    "ReferenceModels",
    "ShadowModelAttack",
    "membership_advantage",
    "membership_report",
    "plot_roc",
]

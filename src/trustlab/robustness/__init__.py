"""Robustness: evasion attacks, robust evaluation, adversarial training and certification.

Every attack takes a classifier that returns logits and inputs in a valid range, and returns an
:class:`AttackResult` whose examples have been re-checked (finite, in range, in the epsilon
ball) and whose accuracy is recomputed from them.
"""

from trustlab.robustness.apgd import APGDCE, APGDDLR, APGDT
from trustlab.robustness.autoattack import AutoAttack, AutoAttackResult, StageReport
from trustlab.robustness.base import (
    Attack,
    AttackContractError,
    AttackResult,
    CountingModel,
    ExampleRandom,
    Norm,
)
from trustlab.robustness.cw import CarliniWagnerL2
from trustlab.robustness.fab import FAB, FABT
from trustlab.robustness.fgsm import FGSM
from trustlab.robustness.pgd import PGD, TargetedPGD
from trustlab.robustness.registry import get_attack, list_attacks, make_attack, register_attack
from trustlab.robustness.sanity import SanityFlag, SanityReport, run_sanity_checks
from trustlab.robustness.smoothing import (
    ABSTAIN,
    CertifyResult,
    Smooth,
    certified_accuracy_curve,
    clopper_pearson_lower,
    plot_certified_accuracy,
)
from trustlab.robustness.square import Square, SquareTargeted
from trustlab.robustness.training import (
    TRADES,
    AdversarialTrainer,
    FastAdversarialTraining,
    GuardCheck,
    PGDAdversarialTraining,
    TrainingReport,
)

__all__ = [
    "ABSTAIN",
    "APGDCE",
    "APGDDLR",
    "APGDT",
    "FAB",
    "FABT",
    "FGSM",
    "PGD",
    "TRADES",
    "AdversarialTrainer",
    "Attack",
    "AttackContractError",
    "AttackResult",
    "AutoAttack",
    "AutoAttackResult",
    "CarliniWagnerL2",
    "CertifyResult",
    "CountingModel",
    "ExampleRandom",
    "FastAdversarialTraining",
    "GuardCheck",
    "Norm",
    "PGDAdversarialTraining",
    "SanityFlag",
    "SanityReport",
    "Smooth",
    "Square",
    "SquareTargeted",
    "StageReport",
    "TargetedPGD",
    "TrainingReport",
    "certified_accuracy_curve",
    "clopper_pearson_lower",
    "get_attack",
    "list_attacks",
    "make_attack",
    "plot_certified_accuracy",
    "register_attack",
    "run_sanity_checks",
]

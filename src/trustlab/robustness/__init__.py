"""Robustness: evasion attacks, robust evaluation, adversarial training and certification.

Every attack takes a classifier that returns logits and inputs in a valid range, and its
``generate`` returns an :class:`AttackResult` whose examples have been re-checked (finite, in
range, in the epsilon ball) and whose accuracy is recomputed from them. Attacks are registered
by name in :data:`ATTACKS`, adversarial training methods (``fit`` returns the trainer, with
its report in ``report_``) in :data:`TRAINERS`.
"""

from trustlab.robustness._counting import CountingModel
from trustlab.robustness._random import ExampleRandom
from trustlab.robustness.apgd import APGDCE, APGDDLR, APGDT
from trustlab.robustness.autoattack import AutoAttack, AutoAttackResult, StageReport
from trustlab.robustness.base import Attack, AttackContractError
from trustlab.robustness.cw import CarliniWagnerL2
from trustlab.robustness.fab import FAB, FABT
from trustlab.robustness.fgsm import FGSM
from trustlab.robustness.norms import Norm
from trustlab.robustness.pgd import PGD, TargetedPGD
from trustlab.robustness.registry import (
    ATTACKS,
    TRAINERS,
    get_attack,
    get_trainer,
    list_attacks,
    list_trainers,
    make_attack,
    make_trainer,
    register_attack,
    register_trainer,
)
from trustlab.robustness.result import AttackResult
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
    "ATTACKS",
    "FAB",
    "FABT",
    "FGSM",
    "PGD",
    "TRADES",
    "TRAINERS",
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
    "get_trainer",
    "list_attacks",
    "list_trainers",
    "make_attack",
    "make_trainer",
    "plot_certified_accuracy",
    "register_attack",
    "register_trainer",
    "run_sanity_checks",
]

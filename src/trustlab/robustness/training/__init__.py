"""Adversarial training: PGD adversarial training, TRADES and fast (FGSM) adversarial training.

Each method trains a classifier in place with ``fit(*, model, x, y, progress=None)``, which
returns the trainer with a :class:`TrainingReport` of the run in ``report_``. The methods are
registered by name in :data:`trustlab.robustness.TRAINERS`.
"""

from trustlab.robustness.training.adversarial_training import PGDAdversarialTraining
from trustlab.robustness.training.base import AdversarialTrainer, GuardCheck, TrainingReport
from trustlab.robustness.training.fast_at import FastAdversarialTraining
from trustlab.robustness.training.trades import TRADES

__all__ = [
    "TRADES",
    "AdversarialTrainer",
    "FastAdversarialTraining",
    "GuardCheck",
    "PGDAdversarialTraining",
    "TrainingReport",
]

"""Robustness: evasion attacks, robust evaluation, adversarial training and certification.

Every attack takes a classifier that returns logits and inputs in a valid range, and returns an
:class:`AttackResult` whose examples have been re-checked (finite, in range, in the epsilon
ball) and whose accuracy is recomputed from them.
"""

from trustlab.robustness.base import (
    Attack,
    AttackContractError,
    AttackResult,
    CountingModel,
    ExampleRandom,
    Norm,
)
from trustlab.robustness.registry import get_attack, list_attacks, make_attack, register_attack

__all__ = [
    "Attack",
    "AttackContractError",
    "AttackResult",
    "CountingModel",
    "ExampleRandom",
    "Norm",
    "get_attack",
    "list_attacks",
    "make_attack",
    "register_attack",
]

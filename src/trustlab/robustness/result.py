"""The record an evasion attack returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trustlab.robustness.norms import Norm


@dataclass(frozen=True)
class AttackResult:
    """What an attack returns; every tensor is on the device of the inputs ``x``.

    Attributes
    ----------
    x_adv : torch.Tensor, shape (n, ...)
        The adversarial examples (the clean input where the attack found nothing better).
    y : torch.Tensor of int64, shape (n,)
        The true labels.
    targets : torch.Tensor of int64, shape (n,), or None
        The target classes of a targeted attack.
    clean_correct : torch.Tensor of bool, shape (n,)
        Whether the model classifies the clean input correctly.
    adv_correct : torch.Tensor of bool, shape (n,)
        Whether the model classifies ``x_adv`` correctly, recomputed from ``x_adv``.
    success : torch.Tensor of bool, shape (n,)
        Untargeted: ``x_adv`` is misclassified. Targeted: it is classified as its target.
    perturbation : torch.Tensor of float, shape (n,)
        The size of ``x_adv - x`` in the attack's norm.
    forwards, backwards : int
        Forward and backward passes the attack spent, counted per example (the final
        re-evaluation of ``x_adv`` and the clean pass are not included).
    norm : Norm
        The threat model.
    eps : float or None
        The radius of the threat model (``None`` for minimum-norm attacks run without one).
    """

    x_adv: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor | None
    clean_correct: torch.Tensor
    adv_correct: torch.Tensor
    success: torch.Tensor
    perturbation: torch.Tensor
    forwards: int
    backwards: int
    norm: Norm
    eps: float | None

    @property
    def n_examples(self) -> int:
        return int(self.y.shape[0])

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.float().mean())

    @property
    def robust_accuracy(self) -> float:
        """Share of examples classified correctly both clean and after the attack."""
        return float((self.clean_correct & self.adv_correct).float().mean())

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean())

    def summary(self) -> dict[str, Any]:
        """The headline numbers as JSON-ready values."""
        return {
            "n_examples": self.n_examples,
            "norm": self.norm.value,
            "eps": self.eps,
            "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": self.robust_accuracy,
            "success_rate": self.success_rate,
            "forwards": self.forwards,
            "backwards": self.backwards,
        }

"""The outcome of the sanity checks: one flag per check, and the report that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXPLANATIONS", "SanityFlag", "SanityReport", "make_flag"]

EXPLANATIONS: dict[str, tuple[str, str]] = {
    "eval_mode": (
        "Every module was in eval mode when the model was handed over.",
        "Some modules were in training mode ({detail}). Attacks run the model in eval mode, "
        "so the numbers describe model.eval(); if the model is used in training mode (dropout "
        "active, batch-norm batch statistics) its outputs are random: call model.eval(), or "
        "treat it as a randomized model and evaluate with EOT.",
    ),
    "deterministic": (
        "Two forward passes of the same inputs gave the same logits.",
        "Two forward passes of the same inputs differ by up to {value:.3g}: the model is "
        "randomized at inference. One gradient describes one random draw, so gradient attacks "
        "underestimate the threat: evaluate with EOT (average gradients over many draws, e.g. "
        "APGD with eot_iter > 1) and report the randomness.",
    ),
    "logits": (
        "The outputs look like logits.",
        "{value:.0%} of the output rows lie in [0, 1] and sum to 1: the model returns "
        "probabilities. Softmax outputs saturate the attacks' losses and flatten their "
        "gradients (a form of gradient masking); pass the logits (the input of the softmax).",
    ),
    "gradients": (
        "Input gradients of the cross-entropy are finite and non-zero.",
        "{value:.0%} of the inputs have an all-zero, NaN or infinite gradient of the "
        "cross-entropy: the gradients are masked or shattered (e.g. by quantisation, "
        "thresholding or a non-differentiable preprocessing step). Gradient attacks cannot be "
        "trusted: use black-box attacks (Square) and BPDA for the non-differentiable part.",
    ),
    "black_box": (
        "Black-box attacks and random noise did no better than the white-box attacks.",
        "A black-box attack or random noise did better than the white-box attacks, breaking "
        "{value:.0%} of the examples they left standing. A white-box attack should not do "
        "worse than one that sees less: this is the classic sign of gradient masking. Report the "
        "black-box numbers too and use stronger or adaptive attacks.",
    ),
    "eps_monotone": (
        "PGD's robust accuracy falls (or stays) as eps grows.",
        "PGD's robust accuracy rises by up to {value:.0%} as eps grows: a larger ball "
        "contains the smaller one, so a working attack can only do better. The attack's "
        "optimisation fails, which suggests gradient masking.",
    ),
    "large_eps": (
        "At an eps spanning the whole input range, PGD brings accuracy down to chance.",
        "At an eps spanning the whole input range, where any input is reachable, PGD leaves "
        "a robust accuracy of {value:.0%}, above chance: the attack cannot even reach an "
        "unconstrained adversarial example, which points to gradient masking or a bug in the "
        "evaluation.",
    ),
}


@dataclass(frozen=True)
class SanityFlag:
    """The outcome of one sanity check.

    Attributes
    ----------
    name : str
        One of :data:`FLAG_NAMES`.
    passed : bool
        Whether the check found nothing suspicious.
    value : float
        What was measured (a share, a difference; see each check).
    explanation : str
        What the outcome means; for a failed check, what it suggests and what to do.
    details : dict
        Further numbers, JSON-ready (e.g. the robust accuracy at each eps of the grid).
    """

    name: str
    passed: bool
    value: float
    explanation: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "value": self.value,
            "explanation": self.explanation,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class SanityReport:
    """The flags of :func:`run_sanity_checks` and what the checks cost.

    Attributes
    ----------
    flags : tuple of SanityFlag
        One per check, in the order of :data:`FLAG_NAMES`.
    n_examples : int
        The size of the subsample the checks ran on.
    indices : tuple of int
        The positions of the subsample in the ``x`` passed in.
    forwards, backwards : int
        Forward and backward passes spent, counted per example.
    """

    flags: tuple[SanityFlag, ...]
    n_examples: int
    indices: tuple[int, ...]
    forwards: int
    backwards: int

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(flag.passed for flag in self.flags)

    @property
    def failed(self) -> list[str]:
        """The names of the failed checks."""
        return [flag.name for flag in self.flags if not flag.passed]

    def flag(self, name: str) -> SanityFlag:
        """The flag called ``name`` (KeyError if there is none)."""
        for flag in self.flags:
            if flag.name == name:
                return flag
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "passed": self.passed,
            "failed": self.failed,
            "n_examples": self.n_examples,
            "forwards": self.forwards,
            "backwards": self.backwards,
            "flags": [flag.to_dict() for flag in self.flags],
        }


def make_flag(
    name: str, *, passed: bool, value: float, detail: str = "", **details: Any
) -> SanityFlag:
    """The flag of check ``name``, with its explanation for the outcome."""
    good, bad = EXPLANATIONS[name]
    text = good if passed else bad.format(value=value, detail=detail)
    return SanityFlag(
        name=name, passed=passed, value=float(value), explanation=text, details=details
    )

"""Sanity checks that run beside every robustness evaluation and say when not to trust it.

A robust accuracy is only as good as the attacks behind it. Models that mask or obfuscate
their gradients (Athalye et al., 2018) look robust to gradient attacks while they are not;
randomised models need expectation over transformation (EOT); models that return
probabilities saturate the attacks' losses. :func:`run_sanity_checks` looks for the symptoms
that Carlini et al. (2019, "On evaluating adversarial robustness") and Croce et al. (2020,
RobustBench) list, on a small subsample, and returns a :class:`SanityReport` of flags, each
with what a failure suggests.

Each check is a small :class:`~trustlab.robustness.sanity.checks.SanityCheck` (one class per
flag, in :mod:`trustlab.robustness.sanity.checks`, with the cost of each) that reads a shared
:class:`~trustlab.robustness.sanity.context.SanityContext`, which holds what several checks
need, computed once: the subsample, its clean logits and the white-box attacks.
"""

from trustlab.robustness.sanity.checks import CHECKS, FLAG_NAMES, SanityCheck
from trustlab.robustness.sanity.context import SanityContext, WhiteBoxResult
from trustlab.robustness.sanity.report import SanityFlag, SanityReport
from trustlab.robustness.sanity.runner import run_sanity_checks

__all__ = [
    "CHECKS",
    "FLAG_NAMES",
    "SanityCheck",
    "SanityContext",
    "SanityFlag",
    "SanityReport",
    "WhiteBoxResult",
    "run_sanity_checks",
]

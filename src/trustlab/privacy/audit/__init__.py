"""Empirical privacy auditing: lower bounds on the epsilon a training run actually spent.

A DP guarantee is an upper bound proved for an algorithm; an audit measures a lower bound from
what an attack achieves on the trained model. A lower bound above the claimed epsilon exposes a
bug (in the code or in the proof); one far below it says the attack, or the analysis, is loose.

- :func:`epsilon_lower_bound`: from a membership test's TPR and FPR over many trials, with
  Clopper-Pearson intervals (Jagielski et al., 2020).
- :func:`one_run_audit`: from guesses on canaries included with probability 1/2 in a single
  training run (Steinke, Nasr and Jagielski, 2023); :func:`draw_canaries` draws the inclusion.
"""

from trustlab.privacy.audit.intervals import clopper_pearson
from trustlab.privacy.audit.one_run import (
    OneRunAudit,
    draw_canaries,
    one_run_audit,
    one_run_p_value,
)
from trustlab.privacy.audit.threshold import EpsilonLowerBound, epsilon_lower_bound

__all__ = [
    "EpsilonLowerBound",
    "OneRunAudit",
    "clopper_pearson",
    "draw_canaries",
    "epsilon_lower_bound",
    "one_run_audit",
    "one_run_p_value",
]

"""The one-run privacy audit with canaries (Steinke, Nasr and Jagielski, 2023).

One training run audits many examples at once. The auditor draws ``m`` canaries and includes
each in the training set independently with probability 1/2 (:func:`draw_canaries`); after
training, it scores every canary (higher = more likely included), guesses "included" for the
``k_plus`` highest scores and "excluded" for the ``k_minus`` lowest, and abstains on the rest.
Under (epsilon, delta)-DP, the number ``v`` of correct guesses among the ``r = k_plus +
k_minus`` made is (up to a delta term) no more likely to be large than under ``r`` independent
coin flips that land right with probability ``q = exp(epsilon) / (1 + exp(epsilon))``
(Steinke et al.'s main theorem, in the form of their Appendix D): for every ``v``,

    P[correct >= v] <= P[Binomial(r, q) >= v]
                       + 2 m delta * max_{i = 1..v} P[v - i <= Binomial(r, q) < v] / i.

The right-hand side is the p-value of the observed ``v`` under the hypothesis "the training is
(epsilon, delta)-DP"; it grows with epsilon. The audit's lower bound is the largest epsilon
whose p-value is below ``1 - confidence`` (0 if none is), found by bisection, as in the paper's
Appendix D. Canaries that the training run does not depend on (excluded ones) cost nothing,
so the audit adds no training run; the price is a looser bound than many runs would give.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import optimize, stats

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Integer, Real, Seed, check_param
from trustlab.core.seeding import make_generator
from trustlab.core.typing import ArrayLike
from trustlab.privacy.audit._data import trials
from trustlab.privacy.audit.intervals import CONFIDENCE

__all__ = [
    "MSG_TOO_MANY_GUESSES",
    "OneRunAudit",
    "draw_canaries",
    "one_run_audit",
    "one_run_p_value",
]

MSG_TOO_MANY_GUESSES = (
    "one_run_audit makes k_plus + k_minus = {guesses} guesses but there are only {m} canaries; "
    "guess on at most all of them."
)
MSG_NO_GUESS = "one_run_audit needs at least one guess: k_plus + k_minus must be >= 1."

_OWNER = "one_run_audit"
_COUNT = Integer(low=0)
_DELTA = Real(low=0, high=1, closed="left")
#: The largest epsilon the bisection looks at; a p-value is still below any level there only
#: when every one of thousands of guesses is right.
_EPSILON_CAP = 100.0


@dataclass(frozen=True)
class OneRunAudit:
    """The result of a one-run audit.

    Attributes
    ----------
    epsilon : float
        The lower bound, >= 0: at ``confidence``, training is not (epsilon', delta)-DP for any
        epsilon' below it.
    correct : int
        Correct guesses ``v``.
    guesses : int
        Guesses made, ``r = k_plus + k_minus``.
    k_plus, k_minus : int
        "Included" and "excluded" guesses.
    n_canaries : int
        ``m``, the canaries drawn (included or not).
    delta, confidence : float
        As given.
    """

    epsilon: float
    correct: int
    guesses: int
    k_plus: int
    k_minus: int
    n_canaries: int
    delta: float
    confidence: float

    def summary(self) -> dict[str, Any]:
        """The audit as JSON-ready values."""
        return asdict(self)


def draw_canaries(n_canaries: int, *, seed: int) -> np.ndarray:
    """Include each of ``n_canaries`` canaries independently with probability 1/2.

    Returns a bool array of shape (n_canaries,), True where the canary goes into the training
    set; the same ``seed`` gives the same draw.

    Examples
    --------
    >>> draw_canaries(6, seed=0).shape
    (6,)
    """
    owner = "draw_canaries"
    n_canaries = check_param(n_canaries, Integer(low=1), name="n_canaries", owner=owner)
    generator = make_generator(check_param(seed, Seed, name="seed", owner=owner))
    return (torch.rand(n_canaries, generator=generator) < 0.5).numpy()


def one_run_p_value(
    *, epsilon: float, delta: float, n_canaries: int, guesses: int, correct: int
) -> float:
    """The p-value of ``correct`` right guesses out of ``guesses`` under (epsilon, delta)-DP.

    ``P[Binomial(r, q) >= v] + 2 m delta max_i P[v - i <= Binomial(r, q) < v] / i`` with
    ``q = exp(epsilon) / (1 + exp(epsilon))``, capped at 1 (Steinke et al., 2023).

    Examples
    --------
    >>> round(one_run_p_value(epsilon=0.0, delta=0.0, n_canaries=10, guesses=10, correct=10), 6)
    0.000977
    """
    q = 1.0 / (1.0 + math.exp(-epsilon))
    tail = float(stats.binom.sf(correct - 1, guesses, q))
    if delta > 0.0 and correct > 0:
        below = stats.binom.pmf(np.arange(correct - 1, -1, -1), guesses, q)  # v-1, v-2, ..., 0
        window = np.cumsum(below) / np.arange(1, correct + 1)
        tail += 2.0 * n_canaries * delta * float(window.max())
    return min(tail, 1.0)


def one_run_audit(
    *,
    included: ArrayLike,
    scores: ArrayLike,
    k_plus: int,
    k_minus: int = 0,
    delta: float = 0.0,
    confidence: float = 0.95,
) -> OneRunAudit:
    """Lower-bound epsilon from one training run with canaries (Steinke et al., 2023).

    The ``k_plus`` canaries with the highest scores are guessed included, the ``k_minus`` with
    the lowest excluded (ties broken by position), the rest abstained on. The bound is the
    largest epsilon at which the p-value of the correct count (:func:`one_run_p_value`) is
    still below ``1 - confidence``. Pick ``k_plus`` and ``k_minus`` before looking at the
    scores (or on other runs): the best of several choices on the same scores is optimistic.

    Parameters
    ----------
    included : array-like of {0, 1}, shape (m,)
        Which canaries were in the training set, as :func:`draw_canaries` drew them.
    scores : array-like of float, shape (m,)
        A membership score of each canary (e.g. the negated loss), finite.
    k_plus : int
        "Included" guesses, >= 0.
    k_minus : int, default=0
        "Excluded" guesses, >= 0; ``k_plus + k_minus`` must be in ``[1, m]``.
    delta : float, default=0.0
        The delta of the guarantee under test, in [0, 1).
    confidence : float, default=0.95
        In (0, 1).

    Returns
    -------
    OneRunAudit

    Raises
    ------
    DataError
        If ``included`` is not 0/1 with both values, ``scores`` not finite, or the lengths
        differ.
    ConfigurationError
        If a count or ``delta``/``confidence`` is out of range.

    References
    ----------
    .. [1] T. Steinke, M. Nasr and M. Jagielski, "Privacy Auditing with One (1) Training
       Run", NeurIPS 2023.

    Examples
    --------
    >>> audit = one_run_audit(included=[1] * 50 + [0] * 50, scores=[1.0] * 50 + [0.0] * 50,
    ...                       k_plus=20, k_minus=20)
    >>> audit.correct, round(audit.epsilon, 2)
    (40, 2.55)
    """
    k_plus = check_param(k_plus, _COUNT, name="k_plus", owner=_OWNER)
    k_minus = check_param(k_minus, _COUNT, name="k_minus", owner=_OWNER)
    delta = check_param(delta, _DELTA, name="delta", owner=_OWNER)
    confidence = check_param(confidence, CONFIDENCE, name="confidence", owner=_OWNER)
    labels, values = trials(included, scores, name="included")
    m = int(labels.size)
    guesses = k_plus + k_minus
    if guesses < 1:
        raise ConfigurationError(MSG_NO_GUESS)
    if guesses > m:
        raise ConfigurationError(MSG_TOO_MANY_GUESSES.format(guesses=guesses, m=m))
    order = np.argsort(-values, kind="stable")
    correct = int(labels[order[:k_plus]].sum()) + int((labels[order[m - k_minus :]] == 0).sum())
    epsilon = _largest_rejected_epsilon(
        delta=delta, n_canaries=m, guesses=guesses, correct=correct, level=1.0 - confidence
    )
    return OneRunAudit(
        epsilon=epsilon,
        correct=correct,
        guesses=guesses,
        k_plus=k_plus,
        k_minus=k_minus,
        n_canaries=m,
        delta=delta,
        confidence=confidence,
    )


def _largest_rejected_epsilon(
    *, delta: float, n_canaries: int, guesses: int, correct: int, level: float
) -> float:
    def excess(epsilon: float) -> float:
        p_value = one_run_p_value(
            epsilon=epsilon,
            delta=delta,
            n_canaries=n_canaries,
            guesses=guesses,
            correct=correct,
        )
        return p_value - level

    if excess(0.0) >= 0.0:
        return 0.0
    if excess(_EPSILON_CAP) < 0.0:
        return _EPSILON_CAP
    return float(optimize.brentq(excess, 0.0, _EPSILON_CAP, xtol=1e-6))

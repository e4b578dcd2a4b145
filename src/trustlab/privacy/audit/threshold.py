"""An epsilon lower bound from a membership test's error rates (Jagielski et al., 2020).

If a training algorithm is (epsilon, delta)-DP, every test that tells whether one example was
in the training set obeys ``TPR <= exp(epsilon) * FPR + delta`` and, swapping the roles of the
two hypotheses, ``TNR <= exp(epsilon) * FNR + delta``. Observed rates from trials (models
trained with or without the example, or canaries included or not) turn this into a lower bound:
with a one-sided confidence interval on each rate,

    epsilon_lb = max( log((TPR_low - delta) / FPR_high), log((TNR_low - delta) / FNR_high) )

where ``TPR_low`` is the lower end of the Clopper-Pearson interval of the TPR, ``FPR_high`` the
upper end of that of the FPR, and so on. A bound below 0 is reported as 0 (the test showed
nothing).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trustlab.core.metrics.roc import roc_curve
from trustlab.core.params import Optional, Real, check_param
from trustlab.core.typing import ArrayLike
from trustlab.privacy.audit._data import trials
from trustlab.privacy.audit.intervals import CONFIDENCE, clopper_pearson

__all__ = ["EpsilonLowerBound", "epsilon_lower_bound"]

_OWNER = "epsilon_lower_bound"
_DELTA = Real(low=0, high=1, closed="left")


@dataclass(frozen=True)
class EpsilonLowerBound:
    """The best epsilon lower bound over the thresholds of a membership test.

    Attributes
    ----------
    epsilon : float
        The lower bound, >= 0: at ``confidence``, the training algorithm is not
        (epsilon', delta)-DP for any epsilon' below it.
    threshold : float
        The rule "member iff score >= threshold" that gives it (``inf`` when the bound is 0).
    tpr, fpr : float
        The observed rates of that rule.
    tpr_low, fpr_high : float
        Their Clopper-Pearson ends at ``confidence``.
    direction : {"members", "non-members"}
        Which form gave the bound: ``log((TPR_low - delta) / FPR_high)`` ("members") or the
        symmetric ``log((TNR_low - delta) / FNR_high)`` ("non-members").
    delta, confidence : float
        As given.
    n_members, n_non_members : int
        The trials of each kind.
    """

    epsilon: float
    threshold: float
    tpr: float
    fpr: float
    tpr_low: float
    fpr_high: float
    direction: str
    delta: float
    confidence: float
    n_members: int
    n_non_members: int

    def summary(self) -> dict[str, Any]:
        """The bound as JSON-ready values."""
        return asdict(self)


def _log_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(np.clip(numerator, 0.0, None) / denominator)
    return np.where(numerator > 0, ratio, -np.inf)


def epsilon_lower_bound(
    *,
    y_true: ArrayLike,
    scores: ArrayLike,
    delta: float = 0.0,
    confidence: float = 0.95,
    threshold: float | None = None,
) -> EpsilonLowerBound:
    """Lower-bound the epsilon of a training algorithm from a membership test's TPR and FPR.

    Each entry of ``scores`` is one trial: a membership score of an example (higher = more
    likely a member) and whether it was in the training set (``y_true``). For every threshold
    ``t`` (the decision rule "member iff score >= t" at every distinct score, as in
    :func:`trustlab.core.metrics.roc_curve`), the true- and false-positive counts give two-sided
    Clopper-Pearson intervals at ``confidence``; the bound at ``t`` is the larger of
    ``log((TPR_low - delta) / FPR_high)`` and ``log((1 - FPR_high - delta) / (1 - TPR_low))``,
    and the result is its maximum over thresholds (Jagielski et al., 2020, Algorithm 2).

    Choosing the best threshold on the same trials makes the bound optimistic; for a bound
    that holds at ``confidence``, pick the threshold on other trials (a held-out half of the
    canaries) and pass it as ``threshold``.

    Parameters
    ----------
    y_true : array-like of {0, 1}, shape (n_trials,)
        1 where the example was in the training set.
    scores : array-like of float, shape (n_trials,)
        Membership scores, finite.
    delta : float, default=0.0
        The delta of the DP guarantee under test, in [0, 1).
    confidence : float, default=0.95
        The confidence of each Clopper-Pearson interval, in (0, 1).
    threshold : float, optional
        Use only the rule "member iff score >= threshold".

    Returns
    -------
    EpsilonLowerBound

    Raises
    ------
    DataError
        If ``y_true`` is not 0/1 with both classes, ``scores`` not finite, or their lengths
        differ.
    ConfigurationError
        If ``delta``, ``confidence`` or ``threshold`` is out of range.

    References
    ----------
    .. [1] M. Jagielski, J. Ullman and A. Oprea, "Auditing Differentially Private Machine
       Learning: How Private is Private SGD?", NeurIPS 2020.

    Examples
    --------
    >>> bound = epsilon_lower_bound(y_true=[1] * 50 + [0] * 50, scores=[1.0] * 50 + [0.0] * 50)
    >>> round(bound.epsilon, 2)
    2.57
    """
    delta = check_param(delta, _DELTA, name="delta", owner=_OWNER)
    confidence = check_param(confidence, CONFIDENCE, name="confidence", owner=_OWNER)
    threshold = check_param(threshold, Optional(Real()), name="threshold", owner=_OWNER)
    labels, values = trials(y_true, scores, name="y_true")
    n_members = int(labels.sum())
    n_non_members = int(labels.size - n_members)
    if threshold is None:
        curve = roc_curve(y_true=labels, scores=values)
        thresholds = curve.thresholds
        true_positives = np.rint(curve.tpr * n_members)
        false_positives = np.rint(curve.fpr * n_non_members)
    else:
        predicted = values >= threshold
        thresholds = np.array([threshold])
        true_positives = np.array([float(np.sum(predicted & (labels == 1)))])
        false_positives = np.array([float(np.sum(predicted & (labels == 0)))])
    tpr_low, _ = clopper_pearson(true_positives, n_members, confidence=confidence)
    _, fpr_high = clopper_pearson(false_positives, n_non_members, confidence=confidence)
    from_members = _log_ratio(tpr_low - delta, fpr_high)
    from_non_members = _log_ratio(1.0 - fpr_high - delta, 1.0 - tpr_low)
    both = np.maximum(from_members, from_non_members)
    best = int(np.argmax(both))
    epsilon = float(both[best])
    # A bound <= 0 (or none at all) says nothing: report 0.
    epsilon = epsilon if math.isfinite(epsilon) and epsilon > 0.0 else 0.0
    return EpsilonLowerBound(
        epsilon=epsilon,
        threshold=float(thresholds[best]),
        tpr=float(true_positives[best] / n_members),
        fpr=float(false_positives[best] / n_non_members),
        tpr_low=float(tpr_low[best]),
        fpr_high=float(fpr_high[best]),
        direction="members" if from_members[best] >= from_non_members[best] else "non-members",
        delta=delta,
        confidence=confidence,
        n_members=n_members,
        n_non_members=n_non_members,
    )

"""Membership-inference metrics with bootstrap confidence intervals.

Threshold rule: every TPR reported here is the largest TPR among the ROC operating points
("member iff score >= t" for each distinct score ``t``) whose FPR is ``<=`` the target FPR,
without interpolation (:func:`trustlab.core.metrics.tpr_at_fpr`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from trustlab.core.metrics import ConfidenceInterval, auc, bootstrap_ci, roc_curve, tpr_at_fpr
from trustlab.core.metrics.roc import as_binary_labels, as_finite_scores
from trustlab.core.params import Integer, Real, Seed, check_param
from trustlab.core.typing import ArrayLike

__all__ = ["MembershipReport", "membership_advantage", "membership_report"]


def membership_advantage(*, y_true: ArrayLike, scores: ArrayLike) -> float:
    """The membership advantage of Yeom et al. (2018): ``max_t (TPR(t) - FPR(t))``.

    The best advantage over the ROC operating points, i.e. twice the best balanced accuracy
    minus one; 0 for an uninformative attack.

    Examples
    --------
    >>> membership_advantage(y_true=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8])
    0.5
    """
    curve = roc_curve(y_true=y_true, scores=scores)
    return float(np.max(curve.tpr - curve.fpr))


@dataclass(frozen=True)
class MembershipReport:
    """An attack's AUC, TPR at fixed FPRs and membership advantage, each with a bootstrap CI.

    Attributes
    ----------
    auc : ConfidenceInterval
        Area under the ROC curve.
    tpr : dict of float to ConfidenceInterval
        TPR at each target FPR, by the threshold rule "largest TPR with FPR <= target, no
        interpolation".
    advantage : ConfidenceInterval
        Membership advantage ``max (TPR - FPR)``.
    n_members, n_non_members : int
        The counts behind the numbers; a TPR at FPR ``f`` rests on ``f * n_non_members``
        false positives at most.
    """

    auc: ConfidenceInterval
    tpr: dict[float, ConfidenceInterval] = field(default_factory=dict)
    advantage: ConfidenceInterval | None = None
    n_members: int = 0
    n_non_members: int = 0


def membership_report(
    *,
    y_true: ArrayLike,
    scores: ArrayLike,
    fprs: Sequence[float] = (0.001, 0.01, 0.05),
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MembershipReport:
    """Score a membership attack: AUC, TPR at each FPR and advantage, with bootstrap CIs.

    The intervals are percentile bootstraps stratified by membership (every resample keeps
    the numbers of members and non-members), all drawn from the same resamples. Each TPR
    follows the threshold rule: the largest TPR among the ROC operating points whose FPR is
    ``<=`` the target, without interpolation.

    Parameters
    ----------
    y_true : array-like of {0, 1} or bool, shape (n_examples,)
        1 for members.
    scores : array-like of float, shape (n_examples,)
        Finite scores, higher = more likely a member.
    fprs : sequence of float, default (0.001, 0.01, 0.05)
        Target FPRs, each in (0, 1).
    n_resamples : int, default 1000
    confidence : float, default 0.95
    seed : int, default 0

    Returns
    -------
    MembershipReport

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> member = np.repeat([0, 1], 500)
    >>> report = membership_report(y_true=member, scores=rng.normal(size=1000) + member,
    ...                            fprs=[0.01], n_resamples=50)
    >>> bool(report.auc.low < report.auc.estimate < report.auc.high)
    True
    """
    owner = "membership_report"
    n_resamples = check_param(n_resamples, Integer(low=1), name="n_resamples", owner=owner)
    confidence = check_param(
        confidence, Real(low=0, high=1, closed="neither"), name="confidence", owner=owner
    )
    seed = check_param(seed, Seed, name="seed", owner=owner)
    targets = [
        check_param(f, Real(low=0, high=1, closed="neither"), name="fprs", owner=owner)
        for f in fprs
    ]
    labels = as_binary_labels(y_true)
    values = as_finite_scores(scores)
    roc_curve(y_true=labels, scores=values)  # checks lengths and both classes once
    arrays = {"y_true": labels, "scores": values}

    def interval(metric: object) -> ConfidenceInterval:
        return bootstrap_ci(
            metric,  # type: ignore[arg-type]
            arrays=arrays,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
            stratify="y_true",
        )

    return MembershipReport(
        auc=interval(auc),
        tpr={target: interval(partial(tpr_at_fpr, fpr=target)) for target in targets},
        advantage=interval(membership_advantage),
        n_members=int(labels.sum()),
        n_non_members=int(len(labels) - labels.sum()),
    )

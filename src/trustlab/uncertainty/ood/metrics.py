"""Metrics of OOD detection: AUROC, AUPR-in, AUPR-out and FPR at 95% TPR, with intervals.

Every metric takes ``is_ood`` (1 for an out-of-distribution example, 0 for an
in-distribution one) and ``scores`` (outlier scores: higher means more likely OOD).

* ``auroc``: the ROC AUC with OOD as the positive class (equal with ID as positive and the
  scores negated).
* ``aupr_out``: average precision with OOD as the positive class; ``aupr_in``: with ID as
  the positive class and the scores negated (Hendrycks and Gimpel, 2017). Average precision
  is ``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds, as
  ``sklearn.metrics.average_precision_score``.
* ``fpr_at_tpr`` (FPR95 at the default ``tpr=0.95``): the fraction of OOD examples still
  accepted as in-distribution when the threshold accepts at least 95% of the
  in-distribution examples (ID is the positive class, as in Liang et al., 2018 and OpenOOD);
  the threshold is the largest one whose ID acceptance is ``>= tpr``, tied scores never split.
  pytorch-ood's ``FPR95TPR`` instead takes OOD as the positive class.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from trustlab.core.checks import check_same_length
from trustlab.core.metrics import ConfidenceInterval, auc, bootstrap_ci
from trustlab.core.metrics.roc import as_binary_labels, as_finite_scores, to_numpy
from trustlab.core.params import Real, check_param
from trustlab.core.typing import ArrayLike

__all__ = ["aupr_in", "aupr_out", "auroc", "fpr_at_tpr", "ood_report"]

_TPR = Real(low=0, high=1, closed="neither")


def _validate(is_ood: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels_raw, scores_raw = to_numpy(is_ood), to_numpy(scores)
    if labels_raw.ndim == 1 and scores_raw.ndim == 1:
        check_same_length(
            first="is_ood", n_first=len(labels_raw), second="scores", n_second=len(scores_raw)
        )
    return as_binary_labels(labels_raw, name="is_ood"), as_finite_scores(scores_raw)


def auroc(*, is_ood: ArrayLike, scores: ArrayLike) -> float:
    """ROC AUC of outlier scores, OOD positive; 0.5 is chance.

    Examples
    --------
    >>> auroc(is_ood=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8])
    0.75
    """
    return auc(y_true=is_ood, scores=scores)


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last = np.append(np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), len(scores) - 1)
    tp = np.cumsum(sorted_labels)[last].astype(np.float64)
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    increments = np.diff(np.concatenate(([0.0], recall)))
    return float(np.sum(increments * precision))


def aupr_out(*, is_ood: ArrayLike, scores: ArrayLike) -> float:
    """Average precision with OOD as the positive class.

    Examples
    --------
    >>> aupr_out(is_ood=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8])
    0.8333333333333333
    """
    labels, values = _validate(is_ood, scores)
    return _average_precision(labels, values)


def aupr_in(*, is_ood: ArrayLike, scores: ArrayLike) -> float:
    """Average precision with in-distribution as the positive class (scores negated).

    Examples
    --------
    >>> aupr_in(is_ood=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8])
    0.8333333333333333
    """
    labels, values = _validate(is_ood, scores)
    return _average_precision(1 - labels, -values)


def fpr_at_tpr(*, is_ood: ArrayLike, scores: ArrayLike, tpr: float = 0.95) -> float:
    """The fraction of OOD examples accepted when ``>= tpr`` of the ID examples are.

    An example is accepted as in-distribution when its outlier score is ``<= t``; ``t`` is
    the smallest score value at which at least ``tpr`` of the ID examples are accepted.

    Examples
    --------
    >>> fpr_at_tpr(is_ood=[0, 0, 0, 0, 1, 1], scores=[1, 2, 3, 4, 3.5, 5], tpr=0.75)
    0.0
    >>> fpr_at_tpr(is_ood=[0, 0, 0, 0, 1, 1], scores=[1, 2, 3, 4, 3.5, 5], tpr=0.95)
    0.5
    """
    target = check_param(tpr, _TPR, name="tpr", owner="fpr_at_tpr")
    labels, values = _validate(is_ood, scores)
    inside = np.sort(values[labels == 0])
    outside = values[labels == 1]
    k = int(np.ceil(target * len(inside) - 1e-9))
    threshold = inside[max(k, 1) - 1]
    return float(np.mean(outside <= threshold))


def ood_report(
    *,
    is_ood: ArrayLike,
    scores: ArrayLike,
    tpr: float = 0.95,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, ConfidenceInterval]:
    """AUROC, AUPR-in, AUPR-out and FPR at ``tpr`` with percentile bootstrap intervals.

    Resamples are stratified by ``is_ood`` (every resample keeps both classes' counts).

    Returns
    -------
    dict of str to ConfidenceInterval
        Keys ``auroc``, ``aupr_in``, ``aupr_out`` and ``fpr@<tpr>`` (e.g. ``fpr@95``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 100)
    >>> report = ood_report(is_ood=labels, scores=rng.normal(size=200) + 2 * labels,
    ...                     n_resamples=50)
    >>> bool(report["auroc"].estimate > 0.8)
    True
    """
    labels, values = _validate(is_ood, scores)
    key = f"fpr@{round(100 * tpr):d}"

    def fpr(is_ood: np.ndarray, scores: np.ndarray) -> float:
        return fpr_at_tpr(is_ood=is_ood, scores=scores, tpr=tpr)

    metrics: dict[str, Callable[..., float]] = {
        "auroc": auroc,
        "aupr_in": aupr_in,
        "aupr_out": aupr_out,
        key: fpr,
    }
    return {
        name: bootstrap_ci(
            metric,
            arrays={"is_ood": labels, "scores": values},
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
            stratify="is_ood",
        )
        for name, metric in metrics.items()
    }

"""Group-fairness criteria as single numbers: demographic parity, equalized odds, equal
opportunity and predictive parity, each as a difference or a ratio between groups.

Definitions (for a positive label ``pos_label`` and groups ``g`` of the sensitive features):

* demographic parity compares selection rates ``P(y_pred = pos | g)``;
* equal opportunity compares true-positive rates ``P(y_pred = pos | y_true = pos, g)``;
* equalized odds compares both true- and false-positive rates; its difference is the larger of
  the TPR difference and the FPR difference (``agg="worst_case"``, as Fairlearn defines it) or
  their mean (``agg="mean"``);
* predictive parity compares precisions ``P(y_true = pos | y_pred = pos, g)``.

A difference is ``max_g - min_g`` (``method="between_groups"``) or ``max_g |v_g - overall|``
(``method="to_overall"``); a ratio is ``min_g / max_g`` or ``min_g min(v_g / overall,
overall / v_g)``, with ``0 / 0`` read as 1 (equal rates). A difference of 0 and a ratio of 1
mean the criterion holds exactly.

Several sensitive attributes form intersectional groups (see :mod:`trustlab.fairness`).
Multi-class predictions: ``pos_label`` picks one class and compares it one-vs-rest; with
``pos_label=None`` every class present in the labels is compared one-vs-rest and the worst value
is returned (the largest difference, the smallest ratio). For confidence intervals and the value
of every group, use :class:`~trustlab.fairness.GroupMetrics`.

References
----------
.. [1] M. Hardt, E. Price and N. Srebro, "Equality of Opportunity in Supervised Learning",
   NeurIPS 2016.
.. [2] S. Bird et al., "Fairlearn: A toolkit for assessing and improving fairness in AI",
   Microsoft Tech. Rep. MSR-TR-2020-32, 2020.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from trustlab.core.checks import check_same_length
from trustlab.core.params import Integer, Optional, Options, check_param
from trustlab.core.typing import ArrayLike, IntArray
from trustlab.fairness._inputs import as_class_labels, as_groups
from trustlab.fairness._rates import aggregate, divide, rate_of, rate_values

__all__ = [
    "CRITERIA",
    "METHODS",
    "CriterionMetric",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "fairness_gap",
    "predictive_parity_difference",
    "predictive_parity_ratio",
    "selection_rate",
]

#: How a difference or a ratio compares the groups.
METHODS = ("between_groups", "to_overall")
#: Ways to combine the TPR and FPR parts of equalized odds.
AGGREGATIONS = ("worst_case", "mean")
#: The group-fairness criteria, and the per-group rates each one compares.
CRITERIA: dict[str, tuple[str, ...]] = {
    "demographic_parity": ("selection_rate",),
    "equalized_odds": ("true_positive_rate", "false_positive_rate"),
    "equal_opportunity": ("true_positive_rate",),
    "predictive_parity": ("precision",),
}

SensitiveFeatures = ArrayLike | Mapping[str, ArrayLike]

_METHOD = Options(*METHODS)
_AGGREGATION = Options(*AGGREGATIONS)
_POS_LABEL = Optional(Integer())


class CriterionMetric(Protocol):
    """A group-fairness criterion as one number, such as :func:`equalized_odds_difference`.

    Every criterion metric takes these keyword arguments; ``y_true`` may be left out for
    demographic parity only, and ``agg`` matters for equalized odds only (the others compare
    one rate).
    """

    def __call__(
        self,
        *,
        y_true: ArrayLike | None = None,
        y_pred: ArrayLike,
        sensitive_features: SensitiveFeatures,
        method: str = "between_groups",
        pos_label: int | None = 1,
        agg: str = "worst_case",
    ) -> float: ...


def _labels_to_compare(pos_label: int | None, y_true: IntArray, y_pred: IntArray) -> list[int]:
    if pos_label is not None:
        return [pos_label]
    return [int(v) for v in np.union1d(y_true, y_pred)]


def _disparity(
    rates: Sequence[str],
    *,
    owner: str,
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    sensitive_features: SensitiveFeatures,
    method: str,
    pos_label: int | None,
    kind: str,
    agg: str = "worst_case",
) -> float:
    method = check_param(method, _METHOD, name="method", owner=owner)
    agg = check_param(agg, _AGGREGATION, name="agg", owner=owner)
    label = check_param(pos_label, _POS_LABEL, name="pos_label", owner=owner)
    predictions = as_class_labels(y_pred, name="y_pred")
    if y_true is None:
        truth = predictions
    else:
        truth = as_class_labels(y_true, name="y_true")
        check_same_length(
            first="y_true", n_first=len(truth), second="y_pred", n_second=len(predictions)
        )
    groups = as_groups(sensitive_features, n_examples=len(predictions))
    per_label: list[float] = []
    for positive in _labels_to_compare(label, truth, predictions):
        parts: list[float] = []
        for name in rates:
            rate = rate_of(name, y_true=truth, y_pred=predictions, pos_label=positive)
            num, den, overall_num, overall_den = rate_values(rate, groups, None)
            metric = name.replace("_", " ")
            by_group = divide(
                num, den, metric=metric, condition=rate.condition, group_names=groups.names
            )
            overall = divide(
                overall_num, overall_den, metric=metric, condition=rate.condition, group_names=None
            )
            parts.append(float(aggregate(by_group, overall, kind=kind, method=method)[0]))
        if agg == "mean":
            per_label.append(float(np.mean(parts)))
        else:
            per_label.append(max(parts) if kind == "difference" else min(parts))
    return max(per_label) if kind == "difference" else min(per_label)


def _criterion_metric(criterion: str, kind: str, doc: str) -> Callable[..., float]:
    """The public metric ``{criterion}_{kind}``, documented by ``doc``.

    Every criterion metric takes the same keyword arguments; the signature shown to users
    leaves out ``agg`` where one rate is compared, and makes ``y_true`` optional for
    demographic parity, which compares predictions only.
    """
    name = f"{criterion}_{kind}"
    needs_truth = criterion != "demographic_parity"

    def metric(
        *,
        y_true: ArrayLike | None = None,
        y_pred: ArrayLike,
        sensitive_features: SensitiveFeatures,
        method: str = "between_groups",
        pos_label: int | None = 1,
        agg: str = "worst_case",
    ) -> float:
        if needs_truth and y_true is None:
            raise TypeError(f"{name}() missing required keyword-only argument: 'y_true'")
        return _disparity(
            CRITERIA[criterion],
            owner=name,
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=sensitive_features,
            method=method,
            pos_label=pos_label,
            kind=kind,
            agg=agg,
        )

    parameters = [
        parameter.replace(default=inspect.Parameter.empty)
        if parameter.name == "y_true" and needs_truth
        else parameter
        for parameter in inspect.signature(metric).parameters.values()
        if parameter.name != "agg" or len(CRITERIA[criterion]) > 1
    ]
    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = doc
    metric.__signature__ = inspect.Signature(parameters, return_annotation="float")  # type: ignore[attr-defined]
    return metric


def selection_rate(*, y_pred: ArrayLike, pos_label: int = 1) -> float:
    """Fraction of examples predicted as ``pos_label``.

    Examples
    --------
    >>> selection_rate(y_pred=[1, 0, 1, 1])
    0.75
    """
    label = check_param(pos_label, Integer(), name="pos_label", owner="selection_rate")
    predictions = as_class_labels(y_pred, name="y_pred")
    return float(np.mean(predictions == label))


demographic_parity_difference: CriterionMetric = _criterion_metric(
    "demographic_parity",
    "difference",
    """Largest gap in selection rate ``P(y_pred = pos | group)`` between groups.

    Parameters
    ----------
    y_pred : array-like of int, shape (n_examples,)
        Hard predictions (NumPy, torch or list).
    sensitive_features : array-like or mapping of str to array-like
        One group per example: a 1-D array of codes or strings, a 2-D array (n_examples,
        n_attributes) or a mapping of attribute names to 1-D arrays (intersectional groups).
    y_true : array-like of int, shape (n_examples,), optional
        True labels. Demographic parity compares predictions only: ``y_true`` is checked
        (values, length) but not used, and is accepted so that every criterion takes the same
        arguments, as in Fairlearn.
    method : {"between_groups", "to_overall"}, default "between_groups"
        ``max - min`` over groups, or the largest distance of a group to the overall rate.
    pos_label : int or None, default 1
        The class whose selection rate is compared; ``None`` takes the worst class.

    Returns
    -------
    float
        In [0, 1]; 0 when every group is selected at the same rate.

    Raises
    ------
    DataError
        If the inputs differ in length, hold NaN, or the sensitive features have one group.
    ConfigurationError
        If ``method`` or ``pos_label`` is invalid.

    Examples
    --------
    >>> demographic_parity_difference(
    ...     y_true=[1, 0, 0, 1, 1, 0],
    ...     y_pred=[1, 1, 0, 1, 0, 0],
    ...     sensitive_features=["a", "a", "a", "b", "b", "b"],
    ... )
    0.3333333333333333
    """,
)

demographic_parity_ratio: CriterionMetric = _criterion_metric(
    "demographic_parity",
    "ratio",
    """Smallest ratio of selection rates between groups (1 means parity).

    The "four-fifths rule" of US employment law asks for a ratio of at least 0.8. Parameters as
    :func:`demographic_parity_difference`.

    Examples
    --------
    >>> demographic_parity_ratio(
    ...     y_pred=[1, 1, 0, 1, 0, 0], sensitive_features=["a", "a", "a", "b", "b", "b"]
    ... )
    0.5
    """,
)

equalized_odds_difference: CriterionMetric = _criterion_metric(
    "equalized_odds",
    "difference",
    """The larger of the TPR difference and the FPR difference between groups.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_examples,)
        True labels and hard predictions.
    sensitive_features : array-like or mapping of str to array-like
        As in :func:`demographic_parity_difference`.
    method : {"between_groups", "to_overall"}, default "between_groups"
        How the groups are compared.
    pos_label : int or None, default 1
        The positive class; ``None`` takes the worst class, one-vs-rest.
    agg : {"worst_case", "mean"}, default "worst_case"
        Combine the TPR and FPR differences by their maximum or their mean.

    Returns
    -------
    float
        In [0, 1]; 0 when TPR and FPR are equal across groups.

    Raises
    ------
    DataError
        As :func:`demographic_parity_difference`, and if a group has no positive or no negative
        example (its TPR or FPR is undefined; the message names the group).

    Examples
    --------
    >>> equalized_odds_difference(
    ...     y_true=[1, 1, 0, 0, 1, 1, 0, 0],
    ...     y_pred=[1, 1, 1, 0, 1, 0, 0, 0],
    ...     sensitive_features=[0, 0, 0, 0, 1, 1, 1, 1],
    ... )
    0.5
    """,
)

equalized_odds_ratio: CriterionMetric = _criterion_metric(
    "equalized_odds",
    "ratio",
    """The smaller of the TPR ratio and the FPR ratio between groups (1 means parity).

    Parameters as :func:`equalized_odds_difference`.

    Examples
    --------
    >>> y_true, y_pred = [1, 0, 1, 0, 1, 0], [1, 0, 1, 1, 0, 0]
    >>> equalized_odds_ratio(y_true=y_true, y_pred=y_pred, sensitive_features=[0, 0, 0, 1, 1, 1])
    0.0
    """,
)

equal_opportunity_difference: CriterionMetric = _criterion_metric(
    "equal_opportunity",
    "difference",
    """Largest gap in true-positive rate between groups (Hardt et al., 2016).

    Parameters as :func:`equalized_odds_difference` (without ``agg``).

    Examples
    --------
    >>> group = ["a", "a", "a", "b", "b", "b"]
    >>> equal_opportunity_difference(
    ...     y_true=[1, 1, 0, 1, 1, 0], y_pred=[1, 1, 0, 1, 0, 0], sensitive_features=group
    ... )
    0.5
    """,
)

equal_opportunity_ratio: CriterionMetric = _criterion_metric(
    "equal_opportunity",
    "ratio",
    """Smallest ratio of true-positive rates between groups (1 means parity).

    Examples
    --------
    >>> y_true, y_pred = [1, 1, 0, 1, 1, 0], [1, 1, 0, 1, 0, 0]
    >>> equal_opportunity_ratio(y_true=y_true, y_pred=y_pred, sensitive_features=list("aaabbb"))
    0.5
    """,
)

predictive_parity_difference: CriterionMetric = _criterion_metric(
    "predictive_parity",
    "difference",
    """Largest gap in precision ``P(y_true = pos | y_pred = pos, group)`` between groups.

    Raises :class:`~trustlab.core.errors.DataError` naming a group that has no positive
    prediction (its precision is undefined).

    Examples
    --------
    >>> predictive_parity_difference(
    ...     y_true=[1, 0, 0, 1, 1, 0],
    ...     y_pred=[1, 1, 0, 1, 1, 0],
    ...     sensitive_features=[0, 0, 0, 1, 1, 1],
    ... )
    0.5
    """,
)

predictive_parity_ratio: CriterionMetric = _criterion_metric(
    "predictive_parity",
    "ratio",
    """Smallest ratio of precisions between groups (1 means parity).

    Examples
    --------
    >>> y_true, y_pred = [1, 1, 0, 0, 1, 0], [1, 1, 1, 1, 1, 0]
    >>> predictive_parity_ratio(y_true=y_true, y_pred=y_pred, sensitive_features=[0, 0, 0, 1, 1, 1])
    0.75
    """,
)


def fairness_gap(
    *,
    criterion: str,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sensitive_features: SensitiveFeatures,
    pos_label: int | None = 1,
) -> float:
    """The between-groups difference of ``criterion``, the gap every mitigation reports.

    Parameters
    ----------
    criterion : {"demographic_parity", "equalized_odds", "equal_opportunity", \
"predictive_parity"}
        Which criterion to measure.
    y_true, y_pred, sensitive_features, pos_label
        As in :func:`equalized_odds_difference`; ``y_true`` is checked but not used for
        demographic parity.

    Examples
    --------
    >>> fairness_gap(
    ...     criterion="demographic_parity",
    ...     y_true=[0, 1, 0, 1],
    ...     y_pred=[1, 1, 0, 1],
    ...     sensitive_features=[0, 0, 1, 1],
    ... )
    0.5
    """
    criterion = check_param(criterion, Options(*CRITERIA), name="criterion", owner="fairness_gap")
    return _disparity(
        CRITERIA[criterion],
        owner="fairness_gap",
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sensitive_features,
        method="between_groups",
        pos_label=pos_label,
        kind="difference",
    )

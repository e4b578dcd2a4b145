"""The scores of the ``fairness`` kind, from the fairness pillar's metrics and group names.

Rows get one group code per intersection of the sensitive attributes (:func:`group_codes`),
named as :mod:`trustlab.fairness` names groups (:func:`group_names`): by the value with one
attribute (``"Female"``), ``"sex=Female, race=White"`` with several.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trustlab.fairness import demographic_parity_difference, equalized_odds_difference
from trustlab.fairness import group_names as fairness_group_names
from trustlab.tasks._scoring import bootstrap_interval
from trustlab.tasks.fairness.params import PenaltyRule


def group_codes(codes: Mapping[str, np.ndarray], labels: Mapping[str, Sequence[str]]) -> np.ndarray:
    """One int64 code per row for the intersection of the attributes, in mixed radix.

    The first attribute varies slowest: with ``sex`` (2 groups) then ``race`` (5 groups), the
    code is ``5 * sex + race``.
    """
    combined = np.zeros(len(next(iter(codes.values()))), dtype=np.int64)
    for name, values in codes.items():
        combined = combined * len(labels[name]) + np.asarray(values, dtype=np.int64)
    return combined


def group_names(labels: Mapping[str, Sequence[str]]) -> list[str]:
    """The name of every code of :func:`group_codes`, as :mod:`trustlab.fairness` names groups.

    One attribute names a group by its value (as the pillar names the groups of one array of
    sensitive features); several name an intersection ``"sex=Female, race=White"`` (as
    :class:`trustlab.fairness.GroupMetrics` names the groups of a mapping of attributes).

    Parameters
    ----------
    labels : mapping of str to sequence of str
        Each attribute's group names, in code order.

    Returns
    -------
    list of str
        ``names[code]`` for every code of :func:`group_codes`, the first attribute varying
        slowest.

    Examples
    --------
    >>> group_names({"sex": ["Female", "Male"], "race": ["White", "Black"]})[:3]
    ['sex=Female, race=White', 'sex=Female, race=Black', 'sex=Male, race=White']
    >>> group_names({"sex": ["Female", "Male"]})
    ['Female', 'Male']
    """
    if len(labels) == 1:
        (values,) = labels.values()
        return fairness_group_names({"": values})
    return fairness_group_names(labels)


def _rates(values: np.ndarray, group: np.ndarray) -> dict[int, float]:
    """The mean of ``values`` in every group present."""
    present = np.unique(group)
    return {int(g): float(values[group == g].mean()) for g in present}


def equalized_odds_gap(*, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> float:
    """:func:`trustlab.fairness.equalized_odds_difference` over the groups where it is defined.

    A group without positive or without negative rows has no TPR or no FPR; its rows are left
    out. With fewer than two groups left the gap is 0.
    """
    defined = [
        g
        for g in np.unique(group)
        if np.any(y_true[group == g] == 1) and np.any(y_true[group == g] == 0)
    ]
    if len(defined) < 2:
        return 0.0
    rows = np.isin(group, defined)
    return float(
        equalized_odds_difference(
            y_true=y_true[rows], y_pred=y_pred[rows], sensitive_features=group[rows]
        )
    )


def _accuracy(
    *, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, counted: np.ndarray
) -> float:
    del group, counted
    return float(np.mean(y_true == y_pred))


def _dp_gap(
    *, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, counted: np.ndarray
) -> float:
    del y_true
    return float(
        demographic_parity_difference(y_pred=y_pred[counted], sensitive_features=group[counted])
    )


def _eo_gap(
    *, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, counted: np.ndarray
) -> float:
    return equalized_odds_gap(y_true=y_true[counted], y_pred=y_pred[counted], group=group[counted])


def part_metrics(
    *,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    group: np.ndarray,
    names: Sequence[str],
    gap_bound: float,
    penalty: PenaltyRule,
    min_group_size: int,
    resamples: int,
    seed: int,
    criterion: str = "demographic_parity",
) -> dict[str, Any]:
    """Every metric of one part of the hidden rows (see the module docstring).

    The score is penalised for the gap of ``criterion``: ``dp_gap`` for
    ``"demographic_parity"``, ``eo_gap`` for ``"equalized_odds"``.

    Parameters
    ----------
    y_true, y_pred : np.ndarray of int64, shape (n,)
        Labels and predicted labels (0 or 1).
    group : np.ndarray of int64, shape (n,)
        Codes from :func:`group_codes`; ``names[code]`` names each.
    """
    sizes = {int(g): int(c) for g, c in zip(*np.unique(group, return_counts=True), strict=True)}
    counted = np.isin(group, [g for g, c in sizes.items() if c >= min_group_size])

    gap_name, gap_of = ("eo_gap", _eo_gap) if criterion == "equalized_odds" else ("dp_gap", _dp_gap)

    def score(
        *, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, counted: np.ndarray
    ) -> float:
        arrays = {"y_true": y_true, "y_pred": y_pred, "group": group, "counted": counted}
        return penalty.apply(accuracy=_accuracy(**arrays), gap=gap_of(**arrays), bound=gap_bound)

    arrays = {"y_true": y_true, "y_pred": y_pred, "group": group, "counted": counted}
    result: dict[str, Any] = {
        "score": score(**arrays),
        "accuracy": _accuracy(**arrays),
        "dp_gap": _dp_gap(**arrays),
        "eo_gap": _eo_gap(**arrays),
        "gap_bound": float(gap_bound),
        "rows": len(y_true),
        "groups_scored": int(sum(c >= min_group_size for c in sizes.values())),
    }
    if resamples > 0:
        for name, metric in (("score", score), ("accuracy", _accuracy), (gap_name, gap_of)):
            result[f"{name}_ci95"] = bootstrap_interval(
                metric, arrays=arrays, resamples=resamples, seed=seed, stratify="group"
            )
    rates = _rates(y_pred == 1, group)
    for code, size in sizes.items():
        if size >= min_group_size:
            result[f"selection_rate[{names[code]}]"] = rates[code]
    return result

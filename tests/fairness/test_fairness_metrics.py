"""Group-fairness criteria: hand-computed cases, Fairlearn on the same predictions, bad input."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import MSG_PARAM
from trustlab.fairness import (
    _inputs,
    _rates,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    fairness_gap,
    group_name,
    group_names,
    predictive_parity_difference,
    predictive_parity_ratio,
    selection_rate,
)

# Group a: selection 1/2, TPR 1/2, FPR 1/2, precision 1/2.
# Group b: selection 1/2, TPR 1,   FPR 1/3, precision 1/2.
# Overall:                TPR 2/3, FPR 2/5.
Y_TRUE = np.array([1, 1, 0, 0, 1, 0, 0, 0])
Y_PRED = np.array([1, 0, 1, 0, 1, 1, 0, 0])
GROUP = np.array(["a"] * 4 + ["b"] * 4)
# Selection rates a 3/4, b 1/4, overall 1/2.
Y_PRED_DP = np.array([1, 1, 1, 0, 1, 0, 0, 0])


def test_selection_rate_by_hand() -> None:
    assert selection_rate(y_pred=Y_PRED_DP) == pytest.approx(0.5)
    assert selection_rate(y_pred=Y_PRED_DP, pos_label=0) == pytest.approx(0.5)
    assert selection_rate(y_pred=[1, 1, 1, 0]) == pytest.approx(0.75)


def test_demographic_parity_by_hand() -> None:
    assert demographic_parity_difference(
        y_pred=Y_PRED_DP, sensitive_features=GROUP
    ) == pytest.approx(0.5)
    assert demographic_parity_ratio(y_pred=Y_PRED_DP, sensitive_features=GROUP) == pytest.approx(
        1 / 3
    )
    assert demographic_parity_difference(
        y_pred=Y_PRED_DP, sensitive_features=GROUP, method="to_overall"
    ) == pytest.approx(0.25)
    # min(0.5 / 0.75, 0.25 / 0.5) = 0.5
    assert demographic_parity_ratio(
        y_pred=Y_PRED_DP, sensitive_features=GROUP, method="to_overall"
    ) == pytest.approx(0.5)
    assert demographic_parity_difference(y_pred=Y_PRED, sensitive_features=GROUP) == 0.0
    assert demographic_parity_ratio(y_pred=Y_PRED, sensitive_features=GROUP) == 1.0


def test_equalized_odds_and_equal_opportunity_by_hand() -> None:
    args = {"y_true": Y_TRUE, "y_pred": Y_PRED, "sensitive_features": GROUP}
    # TPR difference 1/2, FPR difference 1/6.
    assert equalized_odds_difference(**args) == pytest.approx(0.5)
    assert equalized_odds_difference(**args, agg="mean") == pytest.approx((0.5 + 1 / 6) / 2)
    # TPR ratio 1/2, FPR ratio 2/3.
    assert equalized_odds_ratio(**args) == pytest.approx(0.5)
    assert equalized_odds_ratio(**args, agg="mean") == pytest.approx((0.5 + 2 / 3) / 2)
    # To overall: TPR max(|1/2 - 2/3|, |1 - 2/3|) = 1/3; FPR max(0.1, 1/15) = 0.1.
    assert equalized_odds_difference(**args, method="to_overall") == pytest.approx(1 / 3)
    assert equal_opportunity_difference(**args) == pytest.approx(0.5)
    assert equal_opportunity_ratio(**args) == pytest.approx(0.5)
    assert fairness_gap(criterion="equalized_odds", **args) == pytest.approx(0.5)
    assert fairness_gap(criterion="equal_opportunity", **args) == pytest.approx(0.5)


def test_predictive_parity_by_hand() -> None:
    args = {"y_true": Y_TRUE, "y_pred": Y_PRED, "sensitive_features": GROUP}
    assert predictive_parity_difference(**args) == 0.0
    assert predictive_parity_ratio(**args) == 1.0
    # Precisions a 2/3 (2 of 3 predicted positives are positive), b 1/1.
    y_pred = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    args["y_pred"] = y_pred
    assert predictive_parity_difference(**args) == pytest.approx(1 / 3)
    assert predictive_parity_ratio(**args) == pytest.approx(2 / 3)


def test_torch_lists_and_numpy_agree() -> None:
    as_numpy = equalized_odds_difference(y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP)
    as_torch = equalized_odds_difference(
        y_true=torch.from_numpy(Y_TRUE),
        y_pred=torch.from_numpy(Y_PRED),
        sensitive_features=torch.tensor([0] * 4 + [1] * 4),
    )
    as_lists = equalized_odds_difference(
        y_true=Y_TRUE.tolist(), y_pred=Y_PRED.astype(float).tolist(), sensitive_features=list(GROUP)
    )
    assert as_numpy == as_torch == as_lists


def test_intersectional_groups_are_named_and_compared() -> None:
    sex = np.array(["F", "F", "M", "M", "F", "F", "M", "M"])
    race = np.array(["A", "B", "A", "B", "A", "B", "A", "B"])
    groups = _inputs.as_groups({"sex": sex, "race": race})
    assert groups.names == (
        "sex=F, race=A",
        "sex=F, race=B",
        "sex=M, race=A",
        "sex=M, race=B",
    )
    y_pred = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    # Selection rates: F,A 1; F,B 1/2; M,A 1/2; M,B 0.
    assert demographic_parity_difference(
        y_pred=y_pred, sensitive_features={"sex": sex, "race": race}
    ) == pytest.approx(1.0)
    two_d = np.stack([sex, race], axis=1)
    assert demographic_parity_difference(y_pred=y_pred, sensitive_features=two_d) == 1.0
    assert _inputs.as_groups(two_d).names[0] == "sensitive_feature_0=F, sensitive_feature_1=A"
    # One attribute alone: F 3/4, M 1/4.
    assert demographic_parity_difference(y_pred=y_pred, sensitive_features=sex) == 0.5


def test_multi_class_one_vs_rest() -> None:
    y_pred = np.array([0, 1, 2, 2, 0, 0, 1, 2])
    # Class 0: a 1/4, b 1/2; class 1: 1/4 both; class 2: a 1/2, b 1/4.
    assert demographic_parity_difference(
        y_pred=y_pred, sensitive_features=GROUP, pos_label=1
    ) == pytest.approx(0.0)
    assert demographic_parity_difference(
        y_pred=y_pred, sensitive_features=GROUP, pos_label=2
    ) == pytest.approx(0.25)
    assert demographic_parity_difference(
        y_pred=y_pred, sensitive_features=GROUP, pos_label=None
    ) == pytest.approx(0.25)
    assert demographic_parity_ratio(
        y_pred=y_pred, sensitive_features=GROUP, pos_label=None
    ) == pytest.approx(0.5)


def test_calibration_error_parts_by_hand() -> None:
    bins, gaps = _rates.calibration_parts(
        y_true=np.array([1, 0, 0, 0]),
        y_score=np.array([0.9, 0.8, 0.3, 0.1]),
        pos_label=1,
        n_bins=2,
    )
    assert bins.tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(gaps, [0.1, -0.8, -0.3, -0.1])


def test_single_group_is_rejected() -> None:
    with pytest.raises(DataError, match="single group") as info:
        demographic_parity_difference(y_pred=Y_PRED, sensitive_features=np.zeros(8, int))
    assert str(info.value) == _inputs.MSG_ONE_GROUP.format(name="sensitive_features", group="0")


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(DataError, match="same number of examples"):
        demographic_parity_difference(y_pred=Y_PRED[:-1], sensitive_features=GROUP)
    with pytest.raises(DataError, match="y_true and y_pred"):
        equalized_odds_difference(y_true=Y_TRUE[:-1], y_pred=Y_PRED, sensitive_features=GROUP)
    with pytest.raises(DataError, match="same number of examples"):
        demographic_parity_difference(
            y_pred=Y_PRED, sensitive_features={"sex": GROUP, "race": GROUP[:-1]}
        )


def test_nan_is_rejected_with_its_index() -> None:
    y_pred = Y_PRED.astype(float)
    y_pred[5] = np.nan
    with pytest.raises(DataError, match="y_pred holds NaN at index 5"):
        demographic_parity_difference(y_pred=y_pred, sensitive_features=GROUP)
    group = np.array([0.0, 1.0] * 4)
    group[3] = np.nan
    with pytest.raises(DataError, match=r"missing value \(NaN\) at index 3"):
        demographic_parity_difference(y_pred=Y_PRED, sensitive_features=group)
    with pytest.raises(DataError, match=r"missing value \(None\) at index 0"):
        demographic_parity_difference(
            y_pred=Y_PRED, sensitive_features=np.array([None, *GROUP[1:]], dtype=object)
        )


def test_scores_instead_of_labels_are_rejected() -> None:
    with pytest.raises(DataError, match="looks like scores"):
        demographic_parity_difference(y_pred=np.full(8, 0.7), sensitive_features=GROUP)


def test_undefined_rate_names_the_group() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 0, 0, 0])  # group a has no positive example
    with pytest.raises(DataError, match=r"group 'a'.*no examples with y_true == 1"):
        equal_opportunity_difference(y_true=y_true, y_pred=Y_PRED, sensitive_features=GROUP)


def _message(name: str, owner: str, rule: str, value: object) -> str:
    return MSG_PARAM.format(name=name, owner=owner, rule=rule, value=value)


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        demographic_parity_difference(y_pred=Y_PRED, sensitive_features=GROUP, method="pairs")
    assert str(info.value) == _message(
        "method",
        "demographic_parity_difference",
        "one of 'between_groups', 'to_overall'",
        "pairs",
    )
    with pytest.raises(ConfigurationError) as info:
        equalized_odds_difference(y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP, agg="max")
    assert str(info.value) == _message(
        "agg", "equalized_odds_difference", "one of 'worst_case', 'mean'", "max"
    )
    with pytest.raises(ConfigurationError) as info:
        demographic_parity_difference(y_pred=Y_PRED, sensitive_features=GROUP, pos_label="1")
    assert str(info.value) == _message(
        "pos_label", "demographic_parity_difference", "None or an int", "1"
    )
    with pytest.raises(ConfigurationError) as info:
        selection_rate(y_pred=Y_PRED, pos_label=None)  # type: ignore[arg-type]
    assert str(info.value) == _message("pos_label", "selection_rate", "an int", None)
    with pytest.raises(ConfigurationError, match="'criterion' parameter of fairness_gap"):
        fairness_gap(criterion="parity", y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP)


def test_criterion_functions_take_fairlearn_arguments() -> None:
    # Demographic parity accepts y_true (checked, not used), as Fairlearn's functions do.
    with_truth = demographic_parity_difference(
        y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP
    )
    assert with_truth == demographic_parity_difference(y_pred=Y_PRED, sensitive_features=GROUP)
    with pytest.raises(DataError, match="y_true and y_pred"):
        demographic_parity_ratio(y_true=Y_TRUE[:-1], y_pred=Y_PRED, sensitive_features=GROUP)
    with pytest.raises(TypeError, match="missing required keyword-only argument: 'y_true'"):
        equal_opportunity_difference(y_pred=Y_PRED, sensitive_features=GROUP)  # type: ignore[call-arg]
    signature = inspect.signature(demographic_parity_difference)
    assert list(signature.parameters) == [
        "y_true",
        "y_pred",
        "sensitive_features",
        "method",
        "pos_label",
    ]
    assert signature.parameters["y_true"].default is None
    assert "agg" in inspect.signature(equalized_odds_ratio).parameters
    truth = inspect.signature(predictive_parity_ratio).parameters["y_true"]
    assert truth.default is inspect.Parameter.empty
    for function in (demographic_parity_ratio, equal_opportunity_difference):
        assert function.__doc__
        assert function.__module__ == "trustlab.fairness.metrics"
        assert all(
            p.kind is inspect.Parameter.KEYWORD_ONLY
            for p in inspect.signature(function).parameters.values()
        )


def test_group_names_are_one_naming() -> None:
    assert group_name({"sex": "Female", "race": "White"}) == "sex=Female, race=White"
    assert group_name({"": np.float64(2.0)}) == "2"
    labels = {"sex": ["Female", "Male"], "race": ["Black", "White", "Other"]}
    names = group_names(labels)
    assert len(names) == 6
    assert names[1 * 3 + 2] == "sex=Male, race=Other"  # first attribute varies slowest
    # The metrics name the groups of a mapping the same way.
    sex = np.array(["Female", "Male", "Female", "Male"])
    race = np.array(["White", "White", "Black", "Other"])
    groups = _inputs.as_groups({"sex": sex, "race": race})
    assert set(groups.names) <= set(names)
    assert groups.names[groups.codes[0]] == "sex=Female, race=White"


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_matches_fairlearn_on_the_same_predictions(method: str) -> None:
    fm = pytest.importorskip("fairlearn.metrics")
    rng = np.random.default_rng(1)
    n = 3000
    y_true = rng.integers(0, 2, n)
    group = rng.choice(["x", "y", "z"], n)
    race = rng.integers(0, 2, n)
    y_pred = (rng.random(n) < 0.3 + 0.2 * (group == "x") + 0.3 * y_true).astype(int)
    sf = {"group": group, "race": race}
    fl_sf = np.stack([group, race.astype(str)], axis=1)
    pairs = [
        (
            demographic_parity_difference(
                y_true=y_true, y_pred=y_pred, sensitive_features=sf, method=method
            ),
            fm.demographic_parity_difference(
                y_true, y_pred, sensitive_features=fl_sf, method=method
            ),
        ),
        (
            demographic_parity_ratio(y_pred=y_pred, sensitive_features=sf, method=method),
            fm.demographic_parity_ratio(y_true, y_pred, sensitive_features=fl_sf, method=method),
        ),
        (
            equalized_odds_difference(
                y_true=y_true, y_pred=y_pred, sensitive_features=sf, method=method
            ),
            fm.equalized_odds_difference(y_true, y_pred, sensitive_features=fl_sf, method=method),
        ),
        (
            equalized_odds_ratio(
                y_true=y_true, y_pred=y_pred, sensitive_features=sf, method=method
            ),
            fm.equalized_odds_ratio(y_true, y_pred, sensitive_features=fl_sf, method=method),
        ),
        (
            equal_opportunity_difference(
                y_true=y_true, y_pred=y_pred, sensitive_features=group, method=method
            ),
            fm.equal_opportunity_difference(
                y_true, y_pred, sensitive_features=group, method=method
            ),
        ),
        (
            equal_opportunity_ratio(
                y_true=y_true, y_pred=y_pred, sensitive_features=group, method=method
            ),
            fm.equal_opportunity_ratio(y_true, y_pred, sensitive_features=group, method=method),
        ),
    ]
    for ours, theirs in pairs:
        assert ours == pytest.approx(theirs, abs=1e-12)

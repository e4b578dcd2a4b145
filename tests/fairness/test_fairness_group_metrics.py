"""GroupMetrics: figures by hand, against Fairlearn's MetricFrame, bootstrap intervals, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.fairness import BUILTIN_METRICS, GroupMetrics
from trustlab.fairness.group_metrics import MSG_NEEDS_SCORE, MSG_NO_BOOTSTRAP

Y_TRUE = np.array([1, 1, 0, 0, 1, 0, 0, 0])
Y_PRED = np.array([1, 0, 1, 0, 1, 1, 0, 0])
GROUP = np.array(["a"] * 4 + ["b"] * 4)
ALL_RATES = [m for m in BUILTIN_METRICS if m != "calibration_error"]


def test_every_builtin_rate_by_hand() -> None:
    frame = GroupMetrics(metrics=ALL_RATES, y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP)
    expected = {
        "accuracy": ({"a": 2 / 4, "b": 3 / 4}, 5 / 8),
        "error_rate": ({"a": 2 / 4, "b": 1 / 4}, 3 / 8),
        "selection_rate": ({"a": 2 / 4, "b": 2 / 4}, 4 / 8),
        "true_positive_rate": ({"a": 1 / 2, "b": 1 / 1}, 2 / 3),
        "false_positive_rate": ({"a": 1 / 2, "b": 1 / 3}, 2 / 5),
        "true_negative_rate": ({"a": 1 / 2, "b": 2 / 3}, 3 / 5),
        "false_negative_rate": ({"a": 1 / 2, "b": 0 / 1}, 1 / 3),
        "precision": ({"a": 1 / 2, "b": 1 / 2}, 2 / 4),
    }
    for name, (by_group, overall) in expected.items():
        assert frame.by_group[name] == pytest.approx(by_group), name
        assert frame.overall[name] == pytest.approx(overall), name
    assert frame.group_sizes == {"a": 4, "b": 4}
    assert frame.difference()["true_positive_rate"] == pytest.approx(0.5)
    assert frame.ratio()["false_positive_rate"] == pytest.approx(2 / 3)
    assert frame.difference(method="to_overall")["accuracy"] == pytest.approx(1 / 8)
    assert frame.ratio(method="to_overall")["accuracy"] == pytest.approx(0.5 / (5 / 8))
    assert frame.group_min()["accuracy"] == 0.5
    assert frame.group_max()["accuracy"] == 0.75


def test_calibration_error_by_hand() -> None:
    # Two equal-width bins. Group a: bin 1 |(1-.9)+(0-.8)| = .7, bin 0 |(0-.3)+(0-.1)| = .4,
    # ECE (0.7 + 0.4) / 4. Group b: bin 1 |(1-.6)+(1-.7)| = .7, bin 0 |(0-.2)+(1-.4)| = .4.
    # Overall: bin 1 |-.7 + .7| = 0, bin 0 |-.4 + .4| = 0.
    frame = GroupMetrics(
        metrics="calibration_error",
        y_true=[1, 0, 0, 0, 1, 1, 0, 1],
        y_pred=[1, 1, 0, 0, 1, 1, 0, 0],
        y_score=[0.9, 0.8, 0.3, 0.1, 0.6, 0.7, 0.2, 0.4],
        sensitive_features=GROUP,
        n_bins=2,
    )
    assert frame.by_group["calibration_error"] == pytest.approx({"a": 0.275, "b": 0.275})
    assert frame.overall["calibration_error"] == pytest.approx(0.0)


def test_top_label_calibration_for_class_probabilities() -> None:
    # Confidences .8 (correct), .6 (wrong), .9 (correct), .5 (correct) with one bin each side.
    probabilities = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.05, 0.05, 0.9], [0.5, 0.3, 0.2]])
    frame = GroupMetrics(
        metrics=["calibration_error"],
        y_true=[0, 1, 2, 0],
        y_pred=probabilities.argmax(axis=1),
        y_score=probabilities,
        sensitive_features=[0, 0, 1, 1],
        n_bins=1,
    )
    assert frame.by_group["calibration_error"]["0"] == pytest.approx(abs(0.2 - 0.6) / 2)
    assert frame.by_group["calibration_error"]["1"] == pytest.approx(abs(0.1 + 0.5) / 2)


def test_multi_class_rates_get_one_column_per_class() -> None:
    frame = GroupMetrics(
        metrics=["selection_rate", "accuracy"],
        y_true=[0, 1, 2, 2, 0, 0, 1, 2],
        y_pred=[0, 1, 2, 2, 0, 0, 1, 2],
        sensitive_features=GROUP,
        pos_label=None,
    )
    assert frame.metric_names == (
        "selection_rate[0]",
        "selection_rate[1]",
        "selection_rate[2]",
        "accuracy",
    )
    assert frame.by_group["selection_rate[0]"] == pytest.approx({"a": 0.25, "b": 0.5})


def test_custom_callable_metric() -> None:
    def true_positives(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.sum((y_true == 1) & (y_pred == 1)))

    frame = GroupMetrics(
        metrics={"tp": true_positives},
        y_true=Y_TRUE,
        y_pred=Y_PRED,
        sensitive_features=GROUP,
        n_bootstrap=20,
    )
    assert frame.by_group["tp"] == {"a": 1.0, "b": 1.0}
    assert frame.overall["tp"] == 2.0
    # Resampling within (group, label) cells keeps every group's positives at their count, and
    # each resampled group has between 0 and its number of positives true positives.
    ci = frame.by_group_ci["tp"]["a"]
    assert 0.0 <= ci.low <= ci.high <= 2.0


def test_bootstrap_intervals_are_reproducible_and_cover_the_estimate() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    group = rng.integers(0, 3, n)
    y_true = rng.integers(0, 2, n)
    y_pred = (rng.random(n) < 0.2 + 0.2 * group + 0.3 * y_true).astype(int)
    args = {
        "metrics": ["selection_rate", "true_positive_rate"],
        "y_true": y_true,
        "y_pred": y_pred,
        "sensitive_features": group,
        "n_bootstrap": 300,
        "seed": 3,
    }
    frame = GroupMetrics(**args)
    again = GroupMetrics(**args)
    assert frame.to_dict() == again.to_dict()
    for name in frame.metric_names:
        for ci in [frame.overall_ci[name], *frame.by_group_ci[name].values()]:
            assert ci.low <= ci.estimate <= ci.high
            assert ci.n_resamples == 300
        diff = frame.difference_ci()[name]
        assert diff.low <= diff.estimate <= diff.high
        assert 0.0 < diff.high - diff.low < 0.2
        ratio = frame.ratio_ci(method="to_overall")[name]
        assert 0.0 <= ratio.low <= ratio.high <= 1.0
        assert frame.group_min_ci()[name].high <= frame.group_max_ci()[name].high
    # The standard error of a rate p over m examples is sqrt(p (1 - p) / m); the 95% interval
    # of a group's selection rate should be about 2 * 1.96 of it wide.
    members = group == 0
    p = y_pred[members].mean()
    width = 2 * 1.96 * np.sqrt(p * (1 - p) / members.sum())
    ci = frame.by_group_ci["selection_rate"]["0"]
    assert ci.high - ci.low == pytest.approx(width, rel=0.3)
    json.dumps(frame.to_dict())
    assert "[" in frame.table()


def test_from_model_uses_argmax_and_probabilities() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x = torch.randn(50, 3)
    y = torch.randint(0, 2, (50,))
    group = torch.arange(50) % 2
    frame = GroupMetrics.from_model(
        model=model,
        x=x,
        y_true=y,
        sensitive_features=group,
        metrics=["accuracy", "calibration_error"],
        batch_size=7,
    )
    with torch.no_grad():
        logits = model(x)
    direct = GroupMetrics(
        metrics=["accuracy", "calibration_error"],
        y_true=y,
        y_pred=logits.argmax(dim=1),
        y_score=torch.softmax(logits, dim=1)[:, 1],
        sensitive_features=group,
    )
    assert frame.by_group["accuracy"] == direct.by_group["accuracy"]
    assert frame.by_group["calibration_error"] == pytest.approx(
        direct.by_group["calibration_error"]
    )


def test_matches_fairlearn_metric_frame() -> None:
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score, precision_score

    rng = np.random.default_rng(2)
    n = 1500
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["A", "B", "C"], n)
    y_true = rng.integers(0, 2, n)
    y_pred = (rng.random(n) < 0.3 + 0.2 * (sex == "M") + 0.3 * y_true).astype(int)
    theirs = fairlearn_metrics.MetricFrame(
        metrics={
            "accuracy": accuracy_score,
            "selection_rate": fairlearn_metrics.selection_rate,
            "true_positive_rate": fairlearn_metrics.true_positive_rate,
            "false_positive_rate": fairlearn_metrics.false_positive_rate,
            "precision": precision_score,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features={"sex": sex, "race": race},
    )
    ours = GroupMetrics(
        metrics=[
            "accuracy",
            "selection_rate",
            "true_positive_rate",
            "false_positive_rate",
            "precision",
        ],
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features={"sex": sex, "race": race},
    )
    for name in ours.metric_names:
        assert ours.overall[name] == pytest.approx(theirs.overall[name])
        for (s, r), value in theirs.by_group[name].items():
            assert ours.by_group[name][f"sex={s}, race={r}"] == pytest.approx(value)
        assert ours.difference()[name] == pytest.approx(theirs.difference()[name])
        assert ours.ratio()[name] == pytest.approx(theirs.ratio()[name])
        assert ours.difference(method="to_overall")[name] == pytest.approx(
            theirs.difference(method="to_overall")[name]
        )
        assert ours.ratio(method="to_overall")[name] == pytest.approx(
            theirs.ratio(method="to_overall")[name]
        )


def test_errors_are_clear() -> None:
    with pytest.raises(ConfigurationError, match="Unknown metric 'auc'"):
        GroupMetrics(metrics="auc", y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP)
    with pytest.raises(ConfigurationError) as info:
        GroupMetrics(
            metrics="calibration_error", y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP
        )
    assert str(info.value) == MSG_NEEDS_SCORE
    frame = GroupMetrics(metrics="accuracy", y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP)
    with pytest.raises(ConfigurationError) as info:
        _ = frame.overall_ci
    assert str(info.value) == MSG_NO_BOOTSTRAP
    with pytest.raises(ConfigurationError, match="'n_bootstrap' parameter"):
        GroupMetrics(
            metrics="accuracy",
            y_true=Y_TRUE,
            y_pred=Y_PRED,
            sensitive_features=GROUP,
            n_bootstrap=-1,
        )
    with pytest.raises(DataError, match="single group"):
        GroupMetrics(metrics="accuracy", y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=[1] * 8)
    with pytest.raises(DataError, match="same number of examples"):
        GroupMetrics(metrics="accuracy", y_true=Y_TRUE, y_pred=Y_PRED, sensitive_features=GROUP[:5])
    with pytest.raises(DataError, match="y_score holds NaN at index 2"):
        GroupMetrics(
            metrics="calibration_error",
            y_true=Y_TRUE,
            y_pred=Y_PRED,
            y_score=[0.1, 0.2, np.nan, 0.4, 0.5, 0.6, 0.7, 0.8],
            sensitive_features=GROUP,
        )
    with pytest.raises(DataError, match="probabilities in \\[0, 1\\]"):
        GroupMetrics(
            metrics="calibration_error",
            y_true=Y_TRUE,
            y_pred=Y_PRED,
            y_score=np.linspace(-1, 1, 8),
            sensitive_features=GROUP,
        )
    # Group b has no positive prediction: its precision is undefined.
    with pytest.raises(DataError, match=r"precision of group 'b'.*y_pred == 1"):
        GroupMetrics(
            metrics="precision",
            y_true=Y_TRUE,
            y_pred=[1, 0, 1, 0, 0, 0, 0, 0],
            sensitive_features=GROUP,
        )

"""Mitigations: each reduces the gap it targets on Adult; weights, thresholds and errors."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from fairness_slice import AdultSlice, make_model, training_arguments

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.training import predict_logits
from trustlab.fairness import (
    AdversarialDebiasing,
    FairnessConstrainedClassifier,
    GroupThresholds,
    Reweighing,
    fairness_gap,
    reweighing_weights,
)
from trustlab.fairness.base import MSG_NOT_FITTED


def _test_gap(model: torch.nn.Module, adult: AdultSlice, criterion: str) -> tuple[float, float]:
    predictions = predict_logits(model, adult.x_test).argmax(dim=1).numpy()
    gap = fairness_gap(
        criterion=criterion,
        y_true=adult.y_test,
        y_pred=predictions,
        sensitive_features=adult.s_test,
    )
    return float(np.mean(predictions == adult.y_test)), gap


def _margin(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    logits = predict_logits(model, x)
    return (logits[:, 1] - logits[:, 0]).numpy().astype(np.float64)


# -- reweighing ----------------------------------------------------------------------------


def test_reweighing_weights_by_hand() -> None:
    # P(g=0) = P(g=1) = 1/2; P(y=1) = 1/2; P(g=0, y=1) = 2/6, P(g=0, y=0) = 1/6.
    weights = reweighing_weights(y=[1, 1, 0, 1, 0, 0], sensitive_features=[0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(weights, [0.75, 0.75, 1.5, 1.5, 0.75, 0.75])


def test_reweighing_weights_make_label_independent_of_group() -> None:
    rng = np.random.default_rng(0)
    group = rng.integers(0, 3, 3000)
    y = (rng.random(3000) < 0.1 + 0.3 * group).astype(int)
    weights = reweighing_weights(y=y, sensitive_features=group)
    base = np.average(y, weights=weights)
    for g in range(3):
        member = group == g
        assert np.average(y[member], weights=weights[member]) == pytest.approx(base)
    assert weights.mean() == pytest.approx(1.0)


def test_reweighing_reduces_the_demographic_parity_gap(
    adult: AdultSlice, baseline: torch.nn.Module
) -> None:
    base_accuracy, base_gap = _test_gap(baseline, adult, "demographic_parity")
    mitigation = Reweighing(**training_arguments()).fit(
        model=make_model(), x=adult.x_train, y=adult.y_train, sensitive_features=adult.s_train
    )
    accuracy, gap = _test_gap(mitigation.model_, adult, "demographic_parity")
    assert mitigation.criterion == "demographic_parity"
    assert gap < 0.75 * base_gap
    assert accuracy > base_accuracy - 0.03
    report = mitigation.evaluate(x=adult.x_test, y=adult.y_test, sensitive_features=adult.s_test)
    assert report.gap == pytest.approx(gap)
    assert report.accuracy == pytest.approx(accuracy)


# -- constrained training ------------------------------------------------------------------


def test_constrained_training_reduces_the_demographic_parity_gap(
    adult: AdultSlice, baseline: torch.nn.Module
) -> None:
    base_accuracy, base_gap = _test_gap(baseline, adult, "demographic_parity")
    clf = FairnessConstrainedClassifier(
        criterion="demographic_parity", bound=0.02, **dict(training_arguments(), batch_size=256)
    ).fit(model=make_model(), x=adult.x_train, y=adult.y_train, sensitive_features=adult.s_train)
    accuracy, gap = _test_gap(clf.model_, adult, "demographic_parity")
    assert clf.gap_ <= 0.02 or clf.gap_ == min(h["gap"] for h in clf.history_)
    assert gap < 0.5 * base_gap
    assert accuracy > base_accuracy - 0.05
    assert len(clf.history_) == training_arguments()["epochs"]
    assert (clf.multipliers_ >= 0).all()


def test_constrained_training_reduces_the_equalized_odds_gap(
    adult: AdultSlice, baseline: torch.nn.Module
) -> None:
    _, base_gap = _test_gap(baseline, adult, "equalized_odds")
    clf = FairnessConstrainedClassifier(
        criterion="equalized_odds", bound=0.05, **dict(training_arguments(), batch_size=256)
    ).fit(model=make_model(), x=adult.x_train, y=adult.y_train, sensitive_features=adult.s_train)
    _, gap = _test_gap(clf.model_, adult, "equalized_odds")
    assert gap < base_gap


def test_constrained_training_is_reproducible() -> None:
    torch.manual_seed(0)
    x = torch.randn(300, 4)
    group = (x[:, 0] > 0).long()
    y = ((x[:, 1] + group) > 0.5).long()
    states = []
    for _ in range(2):
        torch.manual_seed(1)
        model = torch.nn.Linear(4, 2)
        FairnessConstrainedClassifier(epochs=3, batch_size=64).fit(
            model=model, x=x, y=y, sensitive_features=group
        )
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key])


# -- adversarial debiasing -----------------------------------------------------------------


def test_adversarial_debiasing_reduces_the_demographic_parity_gap(
    adult: AdultSlice, baseline: torch.nn.Module
) -> None:
    _, base_gap = _test_gap(baseline, adult, "demographic_parity")
    debias = AdversarialDebiasing(criterion="demographic_parity", **training_arguments()).fit(
        model=make_model(), x=adult.x_train, y=adult.y_train, sensitive_features=adult.s_train
    )
    accuracy, gap = _test_gap(debias.model_, adult, "demographic_parity")
    assert gap < 0.75 * base_gap
    assert accuracy > 0.78  # better than predicting the majority class (about 0.75)
    assert len(debias.history_) == training_arguments()["epochs"]


def test_debiased_gradient_is_orthogonal_to_the_adversary_gradient() -> None:
    from trustlab.fairness.adversarial import _set_debiased_gradients

    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))]
    grads = (torch.tensor([1.0, 2.0]), torch.tensor([3.0]))
    adversary = (torch.tensor([0.0, 1.0]), torch.tensor([1.0]))
    _set_debiased_gradients(params, grads, adversary, alpha=0.0)
    flat = torch.cat([p.grad for p in params])  # type: ignore[misc]
    # g - (g . a / |a|^2) a with g = (1, 2, 3), a = (0, 1, 1): (1, 2, 3) - 2.5 (0, 1, 1)
    torch.testing.assert_close(flat, torch.tensor([1.0, -0.5, 0.5]))
    _set_debiased_gradients(params, grads, adversary, alpha=2.0)
    flat = torch.cat([p.grad for p in params])  # type: ignore[misc]
    torch.testing.assert_close(flat, torch.tensor([1.0, -2.5, -1.5]))


# -- group thresholds ----------------------------------------------------------------------


@pytest.mark.parametrize("criterion", ["demographic_parity", "equalized_odds", "equal_opportunity"])
def test_group_thresholds_reduce_the_gap_they_target(
    adult: AdultSlice, baseline: torch.nn.Module, criterion: str
) -> None:
    base_accuracy, base_gap = _test_gap(baseline, adult, criterion)
    post = GroupThresholds(criterion=criterion).fit(
        scores=_margin(baseline, adult.x_train),
        y=adult.y_train,
        sensitive_features=adult.s_train,
    )
    assert post.gap_ == pytest.approx(0.0, abs=1e-9)
    report = post.evaluate(
        scores=_margin(baseline, adult.x_test), y=adult.y_test, sensitive_features=adult.s_test
    )
    assert report.criterion == criterion
    assert report.gap < 0.6 * base_gap
    assert report.accuracy > base_accuracy - 0.04


def _brute_force_dp_accuracy(scores: np.ndarray, y: np.ndarray, group: np.ndarray) -> float:
    """Best accuracy over deterministic per-group thresholds with equal selection counts."""
    best = 0.0
    a, b = group == 0, group == 1
    cut_a = [np.inf, *np.unique(scores[a])]
    cut_b = [np.inf, *np.unique(scores[b])]
    for ta, tb in itertools.product(cut_a, cut_b):
        pred = np.where(a, scores >= ta, scores >= tb)
        if pred[a].mean() == pred[b].mean():
            best = max(best, float(np.mean(pred == y)))
    return best


def test_group_thresholds_are_optimal_on_a_small_case() -> None:
    rng = np.random.default_rng(4)
    group = np.repeat([0, 1], 8)
    y = (rng.random(16) < np.where(group == 1, 0.6, 0.3)).astype(int)
    scores = y + rng.normal(scale=0.8, size=16)
    post = GroupThresholds(criterion="demographic_parity").fit(
        scores=scores, y=y, sensitive_features=group
    )
    # Randomised rules can only do better than the best deterministic pair.
    assert post.accuracy_ >= _brute_force_dp_accuracy(scores, y, group) - 1e-12
    probability = post.positive_probability(scores=scores, sensitive_features=group)
    expected_accuracy = np.mean(probability * y + (1 - probability) * (1 - y))
    assert post.accuracy_ == pytest.approx(expected_accuracy)
    assert probability[group == 0].mean() == pytest.approx(probability[group == 1].mean())


def test_group_thresholds_match_fairlearn_threshold_optimizer() -> None:
    pytest.importorskip("fairlearn")
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    n = 2000
    group = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.2 + 0.3 * group).astype(int)
    x = np.stack([y + rng.normal(size=n), group + rng.normal(size=n)], axis=1)
    base = LogisticRegression().fit(x, y)
    scores = base.decision_function(x)
    for criterion in ["demographic_parity", "equalized_odds"]:
        theirs = ThresholdOptimizer(
            estimator=base, constraints=criterion, prefit=True, predict_method="decision_function"
        ).fit(x, y, sensitive_features=group)
        probability = theirs._pmf_predict(x, sensitive_features=group)[:, 1]
        their_accuracy = np.mean(probability * y + (1 - probability) * (1 - y))
        ours = GroupThresholds(criterion=criterion).fit(
            scores=scores, y=y, sensitive_features=group
        )
        # Both solve the same problem exactly (theirs along the hull, ours as an LP).
        assert ours.accuracy_ == pytest.approx(their_accuracy, abs=2e-3)
        assert ours.accuracy_ >= their_accuracy - 1e-9


def test_group_thresholds_predict_is_seeded_and_checks_groups() -> None:
    rng = np.random.default_rng(0)
    group = rng.integers(0, 2, 500)
    y = (rng.random(500) < 0.2 + 0.4 * group).astype(int)
    scores = y + rng.normal(size=500)
    post = GroupThresholds(criterion="equalized_odds", tolerance=0.01).fit(
        scores=scores, y=y, sensitive_features=group
    )
    assert post.gap_ <= 0.01 + 1e-9
    first = post.predict(scores=scores, sensitive_features=group, seed=1)
    assert np.array_equal(first, post.predict(scores=scores, sensitive_features=group, seed=1))
    only_ones = post.predict(scores=scores[group == 1], sensitive_features=group[group == 1])
    assert only_ones.shape == ((group == 1).sum(),)
    with pytest.raises(DataError, match="Group '7' was not seen"):
        post.predict(scores=scores[:3], sensitive_features=[7, 7, 0])
    with pytest.raises(DataError, match="scores must be 1-D"):
        GroupThresholds().fit(scores=np.ones((500, 2)), y=y, sensitive_features=group)
    with pytest.raises(DataError, match="Group '0' has no example with y == 1"):
        GroupThresholds(criterion="equal_opportunity").fit(
            scores=scores, y=y * group, sensitive_features=group
        )
    with pytest.raises(DataError, match="y must hold the labels 0 and 1"):
        GroupThresholds().fit(scores=scores, y=y + 1, sensitive_features=group)


def test_group_thresholds_y_true_still_works_with_a_future_warning() -> None:
    rng = np.random.default_rng(0)
    group = rng.integers(0, 2, 300)
    y = (rng.random(300) < 0.2 + 0.4 * group).astype(int)
    scores = y + rng.normal(size=300)
    new = GroupThresholds().fit(scores=scores, y=y, sensitive_features=group)
    with pytest.warns(FutureWarning, match="renamed 'y'.*deprecated in 0.2.*removed in 0.4"):
        old = GroupThresholds().fit(scores=scores, y_true=y, sensitive_features=group)
    assert old.accuracy_ == new.accuracy_ and old.gap_ == new.gap_
    with pytest.warns(FutureWarning, match=r"GroupThresholds\.evaluate"):
        report = old.evaluate(scores=scores, y_true=y, sensitive_features=group)
    assert report == new.evaluate(scores=scores, y=y, sensitive_features=group)
    with pytest.raises(TypeError, match="once"):
        GroupThresholds().fit(scores=scores, y=y, y_true=y, sensitive_features=group)
    with pytest.raises(TypeError, match="missing required keyword-only argument: 'y'"):
        GroupThresholds().fit(scores=scores, sensitive_features=group)


# -- shared checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mitigation",
    [
        Reweighing(epochs=1),
        FairnessConstrainedClassifier(epochs=1),
        AdversarialDebiasing(epochs=1),
    ],
    ids=["reweighing", "constrained", "adversarial"],
)
def test_model_mitigations_reject_bad_input_and_change_nothing(mitigation: object) -> None:
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    y = torch.randint(0, 2, (40,))
    group = torch.arange(40) % 2
    model = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit = mitigation.fit  # type: ignore[attr-defined]
    with pytest.raises(DataError, match="single group"):
        fit(model=model, x=x, y=y, sensitive_features=torch.zeros(40))
    with pytest.raises(DataError, match="same number of examples"):
        fit(model=model, x=x, y=y, sensitive_features=group[:-1])
    bad_x = x.clone()
    bad_x[4, 1] = float("nan")
    with pytest.raises(DataError, match="NaN in example 4"):
        fit(model=model, x=bad_x, y=y, sensitive_features=group)
    with pytest.raises(DataError, match="labels 0 and 1"):
        fit(model=model, x=x, y=y + 1, sensitive_features=group)
    with pytest.raises(DataError, match="two-class model"):
        fit(model=torch.nn.Linear(3, 3), x=x, y=y, sensitive_features=group)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    with pytest.raises(ConfigurationError) as info:
        mitigation.predict(x=x)  # type: ignore[attr-defined]
    assert str(info.value) == MSG_NOT_FITTED.format(owner=type(mitigation).__name__)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: FairnessConstrainedClassifier(bound=-0.1),
            "The 'bound' parameter of FairnessConstrainedClassifier must be a finite float >= 0. "
            "Got -0.1 instead.",
        ),
        (
            lambda: FairnessConstrainedClassifier(criterion="parity"),
            "The 'criterion' parameter of FairnessConstrainedClassifier must be one of "
            "'demographic_parity', 'equalized_odds', 'equal_opportunity'. Got 'parity' instead.",
        ),
        (
            lambda: Reweighing(epochs=0),
            "The 'epochs' parameter of Reweighing must be an int >= 1. Got 0 instead.",
        ),
        (
            lambda: AdversarialDebiasing(alpha_schedule="linear"),
            "The 'alpha_schedule' parameter of AdversarialDebiasing must be one of 'constant', "
            "'sqrt'. Got 'linear' instead.",
        ),
        (
            lambda: AdversarialDebiasing(lr=0.0),
            "The 'lr' parameter of AdversarialDebiasing must be a finite float > 0. Got 0.0 "
            "instead.",
        ),
        (
            lambda: GroupThresholds(tolerance=float("nan")),
            "The 'tolerance' parameter of GroupThresholds must be a finite float >= 0. Got nan "
            "instead.",
        ),
    ],
)
def test_bad_hyperparameters_are_rejected_at_construction(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        build()
    assert str(info.value) == message


def test_hyperparameters_are_normalised_at_construction() -> None:
    mitigation = FairnessConstrainedClassifier(bound=0, epochs=np.int64(3), seed=np.int32(1))
    assert type(mitigation.bound) is float and type(mitigation.epochs) is int
    assert type(mitigation.seed) is int
    with pytest.raises(ConfigurationError, match=r"'seed' parameter of GroupThresholds\.predict"):
        GroupThresholds().fit(
            scores=[0.1, 0.9, 0.2, 0.8], y=[0, 1, 0, 1], sensitive_features=[0, 0, 1, 1]
        ).predict(scores=[0.5], sensitive_features=[0], seed=-1)

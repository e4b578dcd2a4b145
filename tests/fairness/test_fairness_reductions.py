"""Exponentiated gradient over PyTorch models, and the moments it is built on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import MSG_PARAM
from trustlab.fairness import MITIGATIONS, ExponentiatedGradient, fairness_gap
from trustlab.fairness._moments import Moments


def _moments(criterion: str) -> Moments:
    rng = np.random.default_rng(0)
    return Moments(
        criterion=criterion,
        y=rng.integers(0, 2, 40),
        groups=rng.integers(0, 3, 40),
        n_groups=3,
        bound=0.01,
    )


@pytest.mark.parametrize(
    "criterion",
    ["demographic_parity", "equalized_odds", "equal_opportunity", "bounded_group_loss"],
)
def test_signed_weights_are_minus_n_times_the_lagrangian_gradient(criterion: str) -> None:
    moments = _moments(criterion)
    rng = np.random.default_rng(1)
    lam = rng.random(moments.n_constraints)
    h = rng.random(len(moments.y))
    n = len(h)

    def lagrangian(values: np.ndarray) -> float:
        return float(np.mean(np.abs(values - moments.y)) + lam @ moments.gamma(values))

    # The Lagrangian is linear in each h_i on (0, 1) (|h - y| is linear there for y in {0, 1}).
    step = 1e-6
    numeric = np.array(
        [(lagrangian(h + step * np.eye(n)[i]) - lagrangian(h)) / step for i in range(n)]
    )
    assert np.allclose(moments.signed_weights(lam), -n * numeric, atol=1e-4)
    assert len(moments.gamma(h)) == moments.n_constraints


def test_parity_moments_compare_each_group_with_the_overall_rate() -> None:
    moments = Moments(
        criterion="demographic_parity",
        y=np.zeros(4, dtype=np.int64),
        groups=np.array([0, 0, 1, 1]),
        n_groups=2,
        bound=0.0,
    )
    gamma = moments.gamma(np.array([1.0, 1.0, 0.0, 1.0]))
    assert np.allclose(gamma, [0.25, -0.25, -0.25, 0.25])


def _problem(n: int = 400) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    group = (x[:, 0] > 0).long()
    y = ((x[:, 1] + 1.5 * group + 0.3 * torch.randn(n, generator=generator)) > 0.75).long()
    return x, y, group


def test_it_is_registered_and_refuses_bad_parameters() -> None:
    assert MITIGATIONS.get("exponentiated_gradient") is ExponentiatedGradient
    with pytest.raises(ConfigurationError) as info:
        ExponentiatedGradient(bound=0.0)
    assert str(info.value).startswith(
        MSG_PARAM.format(name="bound", owner="ExponentiatedGradient", rule="", value=0.0)[:40]
    )


@pytest.mark.slow
@pytest.mark.parametrize("criterion", ["demographic_parity", "equalized_odds"])
def test_it_shrinks_the_gap_of_an_unconstrained_model(criterion: str) -> None:
    x, y, group = _problem()
    torch.manual_seed(0)
    eg = ExponentiatedGradient(
        criterion=criterion, bound=0.02, max_iter=15, epochs=3, lr=1e-2, batch_size=100
    )
    eg.fit(model=torch.nn.Linear(3, 2), x=x, y=y, sensitive_features=group)
    unconstrained = ((x[:, 1] + 1.5 * group) > 0.75).long().numpy()
    before = fairness_gap(
        criterion=criterion, y_true=y, y_pred=unconstrained, sensitive_features=group
    )
    assert before > 0.1
    assert eg.gap_ < min(before / 2, 0.08)
    assert np.isclose(eg.weights_.sum(), 1.0) and (eg.weights_ >= 0).all()
    assert len(eg.models_) == len(eg.weights_) and eg.n_oracle_calls_ >= len(eg.models_)
    probability = eg.positive_probability(x=x)
    assert ((probability >= 0) & (probability <= 1)).all()
    np.testing.assert_array_equal(eg.predict(x=x, seed=3), eg.predict(x=x, seed=3))


def test_best_deterministic_predictor_and_bounded_group_loss() -> None:
    x, y, group = _problem(120)
    torch.manual_seed(0)
    eg = ExponentiatedGradient(
        criterion="bounded_group_loss",
        bound=0.3,
        max_iter=3,
        epochs=1,
        batch_size=60,
        predictor="best",
    )
    eg.fit(model=torch.nn.Linear(3, 2), x=x, y=y, sensitive_features=group)
    predictions = eg.predict(x=x)
    expected = eg.model_(x).argmax(1).numpy()
    np.testing.assert_array_equal(predictions, expected)
    report = eg.evaluate(x=x, y=y, sensitive_features=group)
    worst = max(np.mean(predictions[group == g] != y[group == g].numpy()) for g in (0, 1))
    assert report.gap == pytest.approx(worst)
    assert report.criterion == "bounded_group_loss"


def test_a_run_that_cannot_reach_the_bound_warns_and_says_what_to_do() -> None:
    x, y, group = _problem(200)
    # A model that predicts the group, and best responses that barely move it (one step of lr
    # 1e-6): the game cannot reach the bound.
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
        model.weight[1, 0] = 10.0
    eg = ExponentiatedGradient(bound=0.005, max_iter=6, epochs=1, lr=1e-6, batch_size=200)
    with pytest.warns(UserWarning, match="cannot reach the bound") as caught:
        eg.fit(model=model, x=x, y=y, sensitive_features=group)
    # The game looks converged against its only (immovable) response, but misses the bound.
    assert eg.converged_ and eg.violation_ > 0.4
    assert "more epochs or a larger lr" in str(caught[0].message)
    assert eg.gap_ == pytest.approx(1.0)


def test_a_run_stopped_before_convergence_warns() -> None:
    x, y, group = _problem(200)
    torch.manual_seed(0)
    eg = ExponentiatedGradient(bound=0.2, max_iter=1, nu=1e-9, epochs=1, lr=1e-2, batch_size=100)
    with pytest.warns(UserWarning, match="ran all max_iter = 1 rounds") as caught:
        eg.fit(model=torch.nn.Linear(3, 2), x=x, y=y, sensitive_features=group)
    assert not eg.converged_ and eg.best_gap_ >= eg.nu_ and eg.violation_ <= 0
    assert "Raise max_iter" in str(caught[0].message)

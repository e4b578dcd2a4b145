"""FGSM: the one-step attack, checked against steps computed by hand on a linear model."""

from __future__ import annotations

import pytest
import torch
from robustness_linear import TWO_CLASS_WEIGHT, linear_classifier
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.robustness import FGSM
from trustlab.robustness.norms import per_example_norm

W = torch.tensor(TWO_CLASS_WEIGHT[1])
X = torch.tensor([[0.5, 0.4, 0.6, 0.5], [0.3, 0.7, 0.2, 0.5]])
Y = torch.tensor([0, 1])
# For y = 0 the loss grows along +w, for y = 1 along -w.
DIRECTION = torch.stack([W, -W])


def test_linf_step_is_eps_times_the_sign_of_the_gradient() -> None:
    result = FGSM(eps=0.1).generate(model=linear_classifier(TWO_CLASS_WEIGHT), x=X, y=Y)
    assert torch.allclose(result.x_adv, X + 0.1 * DIRECTION.sign())
    assert (result.forwards, result.backwards) == (2, 2)


def test_l2_step_follows_the_normalised_gradient() -> None:
    result = FGSM(norm="L2", eps=0.1).generate(model=linear_classifier(TWO_CLASS_WEIGHT), x=X, y=Y)
    expected = X + 0.1 * DIRECTION / DIRECTION.norm(dim=1, keepdim=True)
    assert torch.allclose(result.x_adv, expected, atol=1e-6)
    assert torch.allclose(result.perturbation, torch.full((2,), 0.1), atol=1e-6)


def test_step_is_clipped_to_the_valid_range() -> None:
    x = torch.tensor([[0.95, 0.02, 0.5, 0.5]])
    result = FGSM(eps=0.1).generate(model=linear_classifier(TWO_CLASS_WEIGHT), x=x, y=[0])
    assert torch.allclose(result.x_adv, torch.tensor([[1.0, 0.0, 0.6, 0.4]]))


def test_random_start_stays_in_the_ball_and_depends_on_the_seed() -> None:
    model = linear_classifier(TWO_CLASS_WEIGHT)
    x = torch.full((6, 4), 0.5)
    y = torch.zeros(6, dtype=torch.int64)
    first = FGSM(eps=0.1, random_start=True, step_size=0.125, seed=1).generate(
        model=model, x=x, y=y
    )
    again = FGSM(eps=0.1, random_start=True, step_size=0.125, seed=1).generate(
        model=model, x=x, y=y
    )
    other = FGSM(eps=0.1, random_start=True, step_size=0.125, seed=2).generate(
        model=model, x=x, y=y
    )
    assert torch.equal(first.x_adv, again.x_adv)
    assert not torch.equal(first.x_adv, other.x_adv)
    assert bool((per_example_norm(first.x_adv - x, first.norm) <= 0.1 + 1e-6).all())
    # A step of 1.25 eps from anywhere in the box moves every coordinate at least 0.25 eps
    # past the centre in the gradient's direction.
    assert bool(((first.x_adv - x) * W.sign() >= 0.025 - 1e-6).all())


def test_fgsm_hurts_the_digits_cnn(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor], linf_eps: float
) -> None:
    x, y = attack_inputs
    result = FGSM(eps=linf_eps).generate(model=digits_cnn, x=x, y=y)
    assert result.robust_accuracy < result.clean_accuracy - 0.3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eps": -3}, r"The 'eps' parameter of FGSM must be a finite float > 0\. Got -3 instead\."),
        ({"eps": 0.1, "norm": "L1"}, r"The 'norm' parameter of FGSM must be one of 'Linf', 'L2'"),
        ({"eps": 0.1, "step_size": 0}, r"'step_size' parameter of FGSM"),
        ({"eps": 0.1, "random_start": 1}, r"'random_start' parameter of FGSM must be a bool"),
        ({"eps": 0.1, "bounds": (1, 0)}, r"'bounds' parameter of FGSM"),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FGSM(**options)  # type: ignore[arg-type]

"""PGD: hand-computed cases on a linear model, the evaluation mode, restarts and targets."""

from __future__ import annotations

import re

import pytest
import torch
from robustness_linear import TWO_CLASS_WEIGHT, linear_classifier
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import MSG_PARAM
from trustlab.robustness import FGSM, PGD, AttackResult, TargetedPGD

W = torch.tensor(TWO_CLASS_WEIGHT[1])
X = torch.tensor([[0.5, 0.4, 0.6, 0.5], [0.3, 0.7, 0.2, 0.5]])
Y = torch.tensor([0, 1])
DIRECTION = torch.stack([W, -W])


def broken(result: AttackResult) -> torch.Tensor:
    return result.clean_correct & ~result.adv_correct


def test_linf_pgd_reaches_the_corner_the_gradient_points_to() -> None:
    # On a two-class linear model the gradient's sign never changes, so PGD walks to the
    # corner x + eps * sign(direction) from any start, once steps * step_size >= 2 eps.
    model = linear_classifier(TWO_CLASS_WEIGHT)
    result = PGD(eps=0.1, steps=10).generate(model=model, x=X, y=Y)
    assert torch.allclose(result.x_adv, X + 0.1 * DIRECTION.sign(), atol=1e-6)
    assert (result.forwards, result.backwards) == (20, 20)


def test_l2_pgd_without_random_start_walks_along_the_gradient() -> None:
    model = linear_classifier(TWO_CLASS_WEIGHT)
    result = PGD(norm="L2", eps=0.15, steps=4, random_start=False).generate(model=model, x=X, y=Y)
    expected = X + 0.15 * DIRECTION / DIRECTION.norm(dim=1, keepdim=True)
    assert torch.allclose(result.x_adv, expected, atol=1e-6)


def test_one_step_without_random_start_is_fgsm(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor], linf_eps: float
) -> None:
    x, y = attack_inputs
    pgd = PGD(eps=linf_eps, steps=1, step_size=linf_eps, random_start=False)
    fgsm = FGSM(eps=linf_eps)
    assert torch.equal(
        pgd.generate(model=digits_cnn, x=x, y=y).x_adv,
        fgsm.generate(model=digits_cnn, x=x, y=y).x_adv,
    )


def test_default_step_size_is_madrys_rule() -> None:
    assert PGD(eps=0.3, steps=40).step_size == pytest.approx(2.5 * 0.3 / 40)


def test_evaluation_mode_breaks_at_least_as_much_for_fewer_passes(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs
    plain = PGD(eps=0.12, steps=10).generate(model=digits_cnn, x=x, y=y)
    early = PGD(eps=0.12, steps=10, early_stop=True).generate(model=digits_cnn, x=x, y=y)
    # Same trajectories: every example the plain attack breaks, the early-stopped one breaks.
    assert bool((broken(early) | ~broken(plain)).all())
    assert early.robust_accuracy <= plain.robust_accuracy
    assert 0 < early.forwards < plain.forwards == 10 * len(y)
    # Examples misclassified when clean are neither attacked nor changed.
    wrong = ~early.clean_correct
    assert torch.equal(early.x_adv[wrong], x[wrong])


def test_restarts_only_add_broken_examples(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs
    one = PGD(eps=0.12, steps=5, early_stop=True).generate(model=digits_cnn, x=x, y=y)
    three = PGD(eps=0.12, steps=5, restarts=3, early_stop=True).generate(model=digits_cnn, x=x, y=y)
    assert bool((broken(three) | ~broken(one)).all())
    assert three.forwards > one.forwards


def test_plain_restarts_keep_a_misclassified_result(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs
    one = PGD(eps=0.12, steps=5).generate(model=digits_cnn, x=x, y=y)
    two = PGD(eps=0.12, steps=5, restarts=2).generate(model=digits_cnn, x=x, y=y)
    assert bool((broken(two) | ~broken(one)).all())
    # Every example attacked in every restart, plus one forward pass per restart.
    assert two.forwards == 2 * (5 + 1) * len(y)


def test_margin_loss_breaks_the_cnn(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor], linf_eps: float
) -> None:
    x, y = attack_inputs
    result = PGD(eps=linf_eps, steps=10, loss="margin").generate(model=digits_cnn, x=x, y=y)
    assert result.robust_accuracy < 0.2


def test_targeted_pgd_hits_its_targets(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs[0][:32], attack_inputs[1][:32]
    targets = (y + 1 + torch.arange(len(y)) % 9) % 10
    for early_stop in (False, True):
        attack = TargetedPGD(eps=0.3, steps=10, early_stop=early_stop)
        result = attack.generate(model=digits_cnn, x=x, y=y, targets=targets)
        with torch.no_grad():
            predicted = digits_cnn(result.x_adv).argmax(1)
        assert torch.equal(result.success, predicted == targets)
        assert result.success_rate > 0.8
    with pytest.raises(ConfigurationError, match="needs 'targets'"):
        TargetedPGD(eps=0.3).generate(model=digits_cnn, x=x, y=y)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eps": -3}, "The 'eps' parameter of PGD must be a finite float > 0. Got -3 instead."),
        ({"eps": 0.1, "steps": 0}, "The 'steps' parameter of PGD must be an int >= 1"),
        ({"eps": 0.1, "restarts": 1.5}, "'restarts' parameter of PGD"),
        (
            {"eps": 0.1, "loss": "dlr"},
            MSG_PARAM.format(name="loss", owner="PGD", rule="one of 'ce', 'margin'", value="dlr"),
        ),
        ({"eps": 0.1, "early_stop": "yes"}, "'early_stop' parameter of PGD must be a bool"),
        ({"eps": 0.1, "seed": -1}, "'seed' parameter of PGD must be an int in [0, 4294967295]"),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        PGD(**options)  # type: ignore[arg-type]

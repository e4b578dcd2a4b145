"""Carlini-Wagner L2: the minimum-norm answer of a linear model, confidence and the eps rule."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from robustness_linear import linear_classifier
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.robustness import AttackResult, CarliniWagnerL2

# Two classes with z1 - z0 = w.x + 0.075, w = (1, -2, 0.5, -0.25): at x = 0.5 the margin of
# class 0 is 0.3, so the closest point of the other class is 0.3 / ||w||_2 away (the box is far).
W = torch.tensor([1.0, -2.0, 0.5, -0.25])
MODEL = linear_classifier([[0.0] * 4, W.tolist()], bias=[0.0, 0.075])
X = torch.full((1, 4), 0.5)
Y = torch.tensor([0])
DISTANCE = 0.3 / float(W.norm())


def run(**options: Any) -> AttackResult:
    attack = CarliniWagnerL2(steps=300, binary_search_steps=5, initial_const=0.01, **options)
    return attack.generate(model=MODEL, x=X, y=Y)


def test_finds_the_closest_point_of_the_other_class() -> None:
    result = run()
    assert bool(result.success.all())
    assert DISTANCE <= float(result.perturbation[0]) <= 1.03 * DISTANCE
    # The perturbation points along w, as the closest point of a hyperplane does.
    delta = (result.x_adv - X)[0]
    assert float(torch.nn.functional.cosine_similarity(delta, W, dim=0)) > 0.999


def test_confidence_asks_for_a_margin() -> None:
    result = run(confidence=1.0)
    with torch.no_grad():
        logits = MODEL(result.x_adv)[0]
    assert float(logits[1] - logits[0]) >= 1.0 - 1e-4
    assert float(result.perturbation[0]) <= 1.03 * (1.3 / float(W.norm()))


def test_eps_keeps_only_perturbations_inside_the_ball() -> None:
    inside = run(eps=1.1 * DISTANCE)
    outside = run(eps=0.9 * DISTANCE)
    assert inside.adv_correct.tolist() == [False]
    assert outside.adv_correct.tolist() == [True]
    assert torch.equal(outside.x_adv, X)


def test_examples_already_misclassified_are_left_alone() -> None:
    result = CarliniWagnerL2(steps=20).generate(model=MODEL, x=X, y=[1])
    assert torch.equal(result.x_adv, X)
    assert result.forwards == 0


def test_more_search_steps_never_find_a_larger_perturbation(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs[0][:10], attack_inputs[1][:10]
    short = CarliniWagnerL2(steps=60, lr=0.05, binary_search_steps=4, initial_const=0.1)
    longer = CarliniWagnerL2(steps=60, lr=0.05, binary_search_steps=6, initial_const=0.1)
    a = short.generate(model=digits_cnn, x=x, y=y)
    b = longer.generate(model=digits_cnn, x=x, y=y)
    # The first four rounds are the same, so the longer search only improves on them.
    both = a.success & b.success
    assert bool((b.perturbation[both] <= a.perturbation[both] + 1e-6).all())
    assert bool((b.success | ~a.success).all())
    assert b.success_rate > 0.9


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"norm": "Linf"}, r"The 'norm' parameter of CarliniWagnerL2 must be one of 'L2'"),
        ({"eps": -1.0}, r"'eps' parameter of CarliniWagnerL2 must be None or a finite float > 0"),
        (
            {"confidence": -1.0},
            r"'confidence' parameter of CarliniWagnerL2 must be a finite float >= 0",
        ),
        ({"binary_search_steps": 0}, r"'binary_search_steps' parameter of CarliniWagnerL2"),
        ({"abort_early": 0}, r"'abort_early' parameter of CarliniWagnerL2 must be a bool"),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CarliniWagnerL2(**options)  # type: ignore[arg-type]

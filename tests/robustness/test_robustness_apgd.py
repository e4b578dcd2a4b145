"""APGD-CE, APGD-DLR and APGD-T: the step-size schedule, cases with a known answer on a linear
model, the targets APGD-T picks, and its pass counts."""

from __future__ import annotations

import pytest
import torch
from robustness_linear import linear_classifier
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.robustness import APGDCE, APGDDLR, APGDT
from trustlab.robustness.apgd import _APGD, _Work, checkpoints
from trustlab.robustness.norms import Norm

# Four classes; only class 1 competes with class 0: z1 - z0 = w.x + 0.075 with
# w = (1, -2, 0.5, -0.25), so ||w||_1 = 3.75 and ||w||_2 = 2.305.
W = [1.0, -2.0, 0.5, -0.25]
FOUR_CLASS = linear_classifier(
    [[0.0] * 4, W, [0.0] * 4, [0.0] * 4], bias=[0.0, 0.075, -10.0, -10.0]
)
# Example 0 has margin z0 - z1 = 0.3, example 1 has 0.45 (its first feature is 0.15 lower).
X = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.35, 0.5, 0.5, 0.5]])
Y = torch.tensor([0, 0])


def test_checkpoints_follow_the_papers_recursion() -> None:
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    expected = [round(100 * value) for value in p[1:] if value <= 1]
    assert checkpoints(100) == expected == [22, 41, 57, 70, 80, 87, 93, 99]
    for steps in (1, 5, 10, 37, 250):
        marks = checkpoints(steps)
        assert marks == sorted(set(marks)) and all(0 < m <= steps for m in marks)


@pytest.mark.parametrize(
    ("attack", "norm", "eps"),
    [
        (APGDCE, "Linf", 0.1),
        (APGDDLR, "Linf", 0.1),
        (APGDT, "Linf", 0.1),
        (APGDCE, "L2", 0.15),
        (APGDT, "L2", 0.15),
    ],
)
def test_breaks_exactly_the_examples_within_reach(
    attack: type[_APGD], norm: str, eps: float
) -> None:
    # Linf: the largest change of z1 - z0 in the ball is eps ||w||_1 = 0.375, which overcomes
    # the margin 0.3 but not 0.45. L2: eps ||w||_2 = 0.346, the same verdicts.
    result = attack(norm=norm, eps=eps, steps=20).generate(model=FOUR_CLASS, x=X, y=Y)
    assert result.adv_correct.tolist() == [False, True]
    assert float(result.perturbation[0]) <= eps + 1e-6


def test_apgd_t_targets_the_runner_up_classes(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs[0][:32], attack_inputs[1][:32]
    with torch.no_grad():
        ranking = digits_cnn(x).argsort(dim=1, descending=True)
    result = APGDT(eps=0.12, steps=10, n_targets=1).generate(model=digits_cnn, x=x, y=y)
    assert result.targets is not None
    assert torch.equal(result.targets, ranking[:, 1])
    more = APGDT(eps=0.12, steps=10, n_targets=3).generate(model=digits_cnn, x=x, y=y)
    assert more.targets is not None
    # Each example's reported target is one of the three runner-up classes, and more targets
    # break at least the same examples.
    assert bool((more.targets[:, None] == ranking[:, 1:4]).any(dim=1).all())
    assert bool((~more.adv_correct | result.adv_correct).all())


def test_pass_counts_of_an_example_that_resists() -> None:
    # Example 1 resists every iterate: it costs (steps + 1) * eot_iter passes per run.
    x, y = X[1:], Y[1:]
    ce = APGDCE(eps=0.1, steps=10, eot_iter=2).generate(model=FOUR_CLASS, x=x, y=y)
    assert (ce.forwards, ce.backwards) == (22, 22)
    restarts = APGDCE(eps=0.1, steps=10, restarts=3).generate(model=FOUR_CLASS, x=x, y=y)
    assert restarts.forwards == 33
    targeted = APGDT(eps=0.1, steps=10, n_targets=2).generate(model=FOUR_CLASS, x=x, y=y)
    # One forward pass ranks the classes, then 11 per target.
    assert (targeted.forwards, targeted.backwards) == (1 + 22, 22)


def test_checkpoint_halves_the_step_on_either_condition() -> None:
    attack = APGDCE(eps=0.1, steps=100)
    n = 3
    x_adv = torch.zeros(n, 2)
    x_best = torch.ones(n, 2)
    work = _Work(
        rows=torch.arange(n),
        x=torch.zeros(n, 2),
        y=torch.zeros(n, dtype=torch.int64),
        targets=None,
        low=torch.zeros(n, 2),
        high=torch.ones(n, 2),
        x_adv=x_adv,
        x_prev=x_adv,
        grad=torch.zeros(n, 2),
        x_best=x_best,
        grad_best=torch.full((n, 2), 5.0),
        loss_best=torch.tensor([2.0, 2.0, 2.0]),
        loss_prev=torch.zeros(n),
        loss_best_at_check=torch.tensor([1.0, 1.0, 2.0]),
        step_size=torch.full((n,), 0.2),
        # Interval of 10 steps, rho = 0.75: at most 7.5 increases means oscillation.
        increases=torch.tensor([8, 7, 9]),
        reduced_at_check=torch.tensor([False, False, False]),
    )
    attack._checkpoint(work, interval=10)
    # 0: enough increases and an improved best loss: kept. 1: oscillates: halved.
    # 2: no improvement since the last checkpoint, which did not halve: halved.
    assert work.step_size.tolist() == pytest.approx([0.2, 0.1, 0.1])
    assert work.reduced_at_check.tolist() == [False, True, True]
    assert torch.equal(work.x_adv, torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]))
    assert torch.equal(work.grad[1:], torch.full((2, 2), 5.0))
    assert work.increases.tolist() == [0, 0, 0]
    assert work.loss_best_at_check.tolist() == [2.0, 2.0, 2.0]


def test_dlr_losses_need_enough_classes() -> None:
    three = linear_classifier([[0.0] * 4, W, [0.0] * 4])
    two = linear_classifier([[0.0] * 4, W])
    with pytest.raises(DataError, match="at least 4 classes for its targeted DLR loss"):
        APGDT(eps=0.1, steps=2).generate(model=three, x=X, y=Y)
    with pytest.raises(DataError, match="at least 3 classes for its DLR loss"):
        APGDDLR(eps=0.1, steps=2).generate(model=two, x=X, y=Y)
    assert APGDCE(eps=0.1, steps=2).generate(model=two, x=X, y=Y).n_examples == 2


def test_apgd_ce_breaks_the_cnn(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor], linf_eps: float
) -> None:
    x, y = attack_inputs
    result = APGDCE(eps=linf_eps, steps=20).generate(model=digits_cnn, x=x, y=y)
    assert result.robust_accuracy < 0.1
    assert result.norm is Norm.LINF


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eps": 0}, r"The 'eps' parameter of APGDCE must be a finite float > 0\. Got 0 instead\."),
        (
            {"eps": 0.1, "rho": 1.0},
            r"The 'rho' parameter of APGDCE must be a finite float in \(0, 1\)",
        ),
        ({"eps": 0.1, "eot_iter": 0}, r"'eot_iter' parameter of APGDCE must be an int >= 1"),
        ({"eps": 0.1, "norm": "L1"}, r"'norm' parameter of APGDCE must be one of 'Linf', 'L2'"),
    ],
)
def test_bad_parameters_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        APGDCE(**options)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'n_targets' parameter of APGDT"):
        APGDT(eps=0.1, n_targets=0)

"""Fast adversarial training (Wong et al., 2020) and its catastrophic-overfitting guard."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from robustness_training_checks import LINF_EPS, assert_more_robust, trainable_copy
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.robustness.training import FastAdversarialTraining, GuardCheck, TrainingReport


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fast_training_raises_pgd_robust_accuracy(digits_cnn: nn.Module, digits_split: Any) -> None:
    model = trainable_copy(digits_cnn)
    trainer = FastAdversarialTraining(eps=LINF_EPS, epochs=3, lr=2e-3)
    report = trainer.fit(model=model, x=digits_split.x_train, y=digits_split.y_train).report_
    assert trainer.alpha == pytest.approx(1.25 * LINF_EPS)
    # One check of the starting weights, then one per epoch; no collapse on this easy case.
    assert [check.epoch for check in report.checks] == [0, 1, 2, 3]
    assert not report.overfitting_detected and not report.stopped_early
    assert report.restored_check is None
    assert_more_robust(model, digits_cnn, digits_split)


def test_a_collapse_rolls_back_to_the_starting_weights(
    digits_cnn: nn.Module, digits_split: Any
) -> None:
    # A huge SGD step wrecks the model at once: PGD accuracy on the guard batch falls to about
    # zero from the starting weights' level, so the run stops and the start is restored.
    model = trainable_copy(digits_cnn)
    start = copy.deepcopy(model.state_dict())
    trainer = FastAdversarialTraining(
        eps=LINF_EPS, epochs=2, lr=0.5, optimizer="sgd", check_every=2
    )
    report = trainer.fit(model=model, x=digits_split.x_train, y=digits_split.y_train).report_
    assert report.overfitting_detected and report.stopped_early
    assert report.restored_check == 0 and report.steps == 2
    assert report.checks[0].pgd_accuracy - report.checks[-1].pgd_accuracy > 0.2
    assert same_weights(model.state_dict(), start)
    # Re-running the check on the returned model reproduces the best check.
    again = trainer._check(model, epoch=0, step=0)
    assert again == report.checks[0]


def scripted(values: list[float]) -> Iterator[float]:
    yield from values


def test_the_guard_restores_the_best_checkpoint_not_the_last(
    monkeypatch: pytest.MonkeyPatch, digits_cnn: nn.Module, digits_split: Any
) -> None:
    # The guard's rule on a scripted sequence of PGD accuracies: the best is check 2 (0.6);
    # check 4 (0.35) is more than 0.2 below it, so the run stops there and check 2's weights
    # come back, even though check 3 came later.
    accuracies = scripted([0.3, 0.5, 0.6, 0.55, 0.35, 0.9])
    saved: list[dict[str, torch.Tensor]] = []

    def fake_check(self: FastAdversarialTraining, model: nn.Module, *, epoch: int, step: int):  # type: ignore[no-untyped-def]
        saved.append(copy.deepcopy(model.state_dict()))
        value = next(accuracies)
        return GuardCheck(epoch=epoch, step=step, pgd_accuracy=value, fgsm_accuracy=0.9)

    monkeypatch.setattr(FastAdversarialTraining, "_check", fake_check)
    model = trainable_copy(digits_cnn)
    trainer = FastAdversarialTraining(eps=LINF_EPS, epochs=3, check_every=1, guard_size=32)
    x, y = digits_split.x_train[:160], digits_split.y_train[:160]
    report: TrainingReport = trainer.fit(model=model, x=x, y=y).report_
    assert [c.pgd_accuracy for c in report.checks] == [0.3, 0.5, 0.6, 0.55, 0.35]
    assert report.overfitting_detected and report.restored_check == 2 and report.steps == 4
    assert same_weights(model.state_dict(), saved[2])
    assert not same_weights(model.state_dict(), saved[3])


def test_guard_off_trains_on_everything(digits_cnn: nn.Module, digits_split: Any) -> None:
    model = trainable_copy(digits_cnn)
    x, y = digits_split.x_train[:100], digits_split.y_train[:100]
    trainer = FastAdversarialTraining(eps=LINF_EPS, epochs=1, guard=False, batch_size=50)
    report = trainer.fit(model=model, x=x, y=y).report_
    assert report.steps == 2 and report.checks == []
    with pytest.raises(DataError, match="at least 129 training examples"):
        FastAdversarialTraining(eps=LINF_EPS, epochs=1).fit(model=model, x=x, y=y)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"eps": 0.1, "norm": "L2"}, "must be one of 'Linf'"),
        ({"eps": 0.1, "max_drop": 0.0}, "'max_drop' parameter of FastAdversarialTraining"),
        ({"eps": 0.1, "alpha": -1}, "'alpha' parameter of FastAdversarialTraining"),
        ({"eps": 0.1, "guard": "yes"}, "'guard' parameter of FastAdversarialTraining"),
    ],
)
def test_bad_parameters_name_themselves(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FastAdversarialTraining(**arguments)  # type: ignore[arg-type]

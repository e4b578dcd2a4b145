"""PGD adversarial training (Madry et al.): robustness gained, reproducibility, input checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from robustness_training_checks import LINF_EPS, assert_more_robust, trainable_copy
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.robustness._inputs import MSG_OUT_OF_BOUNDS
from trustlab.robustness.norms import Norm
from trustlab.robustness.training import PGDAdversarialTraining
from trustlab.robustness.training.base import inner_pgd


@pytest.mark.slow
def test_pgd_training_raises_pgd_robust_accuracy(digits_cnn: nn.Module, digits_split: Any) -> None:
    model = trainable_copy(digits_cnn)
    epochs: list[int] = []
    trainer = PGDAdversarialTraining(eps=LINF_EPS, steps=5, epochs=2, lr=2e-3)
    fitted = trainer.fit(
        model=model,
        x=digits_split.x_train,
        y=digits_split.y_train,
        progress=lambda event: epochs.append(event.done),
    )
    report = trainer.report_
    assert fitted is trainer and epochs == [1, 2] and report.epochs_run == 2
    assert report.steps == 2 * -(-len(digits_split.y_train) // 64)
    assert_more_robust(model, digits_cnn, digits_split)
    assert not model.training  # the eval mode of the copy is restored


def test_the_same_seed_gives_the_same_weights(digits_cnn: nn.Module, digits_split: Any) -> None:
    x, y = digits_split.x_train[:96], digits_split.y_train[:96]
    runs = []
    for seed in (0, 0, 1):
        model = trainable_copy(digits_cnn)
        PGDAdversarialTraining(eps=LINF_EPS, steps=2, epochs=1, seed=seed).fit(
            model=model, x=x, y=y
        )
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_inner_pgd_stays_in_the_ball_and_range(digits_cnn: nn.Module, digits_split: Any) -> None:
    x, y = digits_split.x_test[:32], digits_split.y_test[:32]
    for norm, eps in ((Norm.LINF, 0.1), (Norm.L2, 1.0)):
        x_adv = inner_pgd(
            model=digits_cnn,
            x=x,
            objective=lambda logits: nn.functional.cross_entropy(logits, y, reduction="sum"),
            start=x.clone(),
            norm=norm,
            eps=eps,
            step_size=eps / 2,
            steps=5,
            bounds=(0.0, 1.0),
        )
        size = (x_adv - x).flatten(1)
        size = size.abs().amax(1) if norm is Norm.LINF else size.norm(dim=1)
        assert bool((size <= eps + 1e-5).all())
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
        loss = nn.functional.cross_entropy
        assert loss(digits_cnn(x_adv), y) > loss(digits_cnn(x), y)


def test_bad_input_is_refused_and_changes_nothing(digits_cnn: nn.Module) -> None:
    model = trainable_copy(digits_cnn)
    before = copy.deepcopy(model.state_dict())
    x = torch.rand(8, 1, 8, 8) * 2
    with pytest.raises(DataError) as info:
        PGDAdversarialTraining(eps=0.1, epochs=1).fit(model=model, x=x, y=torch.zeros(8).long())
    index = int(torch.argmax((x.flatten(1).amax(1) > 1).to(torch.uint8)))
    value = float(x[index].max())
    assert str(info.value) == MSG_OUT_OF_BOUNDS.format(bounds=(0.0, 1.0), index=index, value=value)
    with pytest.raises(DataError, match="same number of examples"):
        PGDAdversarialTraining(eps=0.1, epochs=1).fit(
            model=model, x=torch.rand(8, 1, 8, 8), y=torch.zeros(7).long()
        )
    with pytest.raises(DataError, match=r"class indices in \[0, 10\)"):
        PGDAdversarialTraining(eps=0.1, epochs=1).fit(
            model=model, x=torch.rand(8, 1, 8, 8), y=torch.full((8,), 12)
        )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"eps": -1.0}, "The 'eps' parameter of PGDAdversarialTraining must be a finite float > 0"),
        ({"eps": 0.1, "steps": 0}, "The 'steps' parameter of PGDAdversarialTraining"),
        ({"eps": 0.1, "norm": "L3"}, "The 'norm' parameter of PGDAdversarialTraining"),
        ({"eps": 0.1, "optimizer": "rmsprop"}, "'optimizer' parameter of PGDAdversarialTraining"),
        ({"eps": 0.1, "random_start": 1}, "'random_start' parameter of PGDAdversarialTraining"),
    ],
)
def test_bad_parameters_name_themselves(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PGDAdversarialTraining(**arguments)  # type: ignore[arg-type]

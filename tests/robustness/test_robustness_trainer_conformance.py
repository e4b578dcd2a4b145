"""One contract, checked on every registered adversarial training method.

Each method must: declare every parameter of its constructor and check it there, with the one
message format; build with its defaults (and an ``eps``); and have ``fit`` train a model in
place and return the trainer itself, with the report of the run in ``report_`` (set by
``fit`` only) and the model's mode restored.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from trustlab.core.errors import ConfigurationError
from trustlab.core.models import build_model
from trustlab.core.params import MSG_PARAM, parameter_constraints
from trustlab.robustness import (
    TRAINERS,
    AdversarialTrainer,
    TrainingReport,
    get_trainer,
    list_trainers,
    make_trainer,
)

#: Settings that keep each method quick; only those its constructor takes are passed.
QUICK = {"epochs": 1, "batch_size": 16, "steps": 1, "guard_size": 8, "guard_steps": 1}


def keyword_parameters(cls: type) -> list[str]:
    parameters = inspect.signature(cls).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def test_the_registry_holds_the_three_methods() -> None:
    assert list_trainers() == ["fast-at", "pgd-at", "trades"]
    assert all(issubclass(TRAINERS.get(name), AdversarialTrainer) for name in list_trainers())


@pytest.mark.parametrize("name", list_trainers())
def test_parameters_are_declared_and_checked_at_construction(name: str) -> None:
    cls = get_trainer(name)
    assert cls.name == name
    assert set(keyword_parameters(cls)) <= set(parameter_constraints(cls))
    trainer = make_trainer(name, options={"eps": 0.1})
    assert trainer.eps == 0.1 and trainer.norm in cls.norms
    assert not hasattr(trainer, "report_")
    with pytest.raises(ConfigurationError) as info:
        make_trainer(name, options={"eps": 0.1, "epochs": 0})
    expected = MSG_PARAM.format(name="epochs", owner=cls.__name__, rule="an int >= 1", value=0)
    assert str(info.value) == expected
    with pytest.raises(ConfigurationError, match="'optimizer' parameter of"):
        make_trainer(name, options={"eps": 0.1, "optimizer": "rmsprop"})


@pytest.mark.parametrize("name", list_trainers())
def test_fit_returns_the_trainer_with_its_report(name: str) -> None:
    cls = get_trainer(name)
    accepted = keyword_parameters(cls)
    options = {key: value for key, value in QUICK.items() if key in accepted}
    trainer = make_trainer(name, options={"eps": 0.1, **options})
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": 4, "num_classes": 3}).eval()
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.rand(40, 4, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(2))
    fitted = trainer.fit(model=model, x=x, y=y)
    assert fitted is trainer
    assert isinstance(trainer.report_, TrainingReport)
    assert trainer.report_.epochs_run == 1 and trainer.report_.steps >= 1
    assert len(trainer.report_.losses) == 1
    assert not model.training
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))

"""Seeding helpers and the optimiser factory of the core."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.core.optim import make_optimizer
from trustlab.core.seeding import make_generator, seeded


def test_seeded_is_reproducible_and_restores_the_callers_state() -> None:
    torch.manual_seed(123)
    expected_after = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        first = torch.rand(3)
    after = torch.rand(3)
    with seeded(7):
        second = torch.rand(3)
    assert torch.equal(first, second)
    assert torch.equal(after, expected_after)


def test_seeded_deterministic_is_switched_off_again() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    with seeded(0, deterministic=True):
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_seeded_refuses_a_bad_seed() -> None:
    with pytest.raises(ConfigurationError, match="'seed' parameter of seeded"), seeded(-1):
        pass


def test_make_generator_is_local() -> None:
    a = torch.rand(2, generator=make_generator(5))
    b = torch.rand(2, generator=make_generator(5))
    assert torch.equal(a, b)
    assert make_generator(5).device.type == "cpu"


@pytest.mark.parametrize(("name", "kind"), [("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD")])
def test_make_optimizer(name: str, kind: str) -> None:
    model = nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    optimizer = make_optimizer(name, model, lr=0.1, weight_decay=0.01)
    assert type(optimizer).__name__ == kind
    assert len(optimizer.param_groups[0]["params"]) == 1  # frozen parameters are left out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "lbfgs", "lr": 0.1}, "'optimizer' parameter of Trainer must be one of"),
        ({"name": "sgd", "lr": 0.0}, "'lr' parameter of Trainer must be a finite float > 0"),
        ({"name": "sgd", "lr": 0.1, "momentum": 1.0}, "'momentum' parameter of Trainer"),
    ],
)
def test_make_optimizer_refuses(options: dict[str, object], message: str) -> None:
    name = options.pop("name")
    with pytest.raises(ConfigurationError, match=message):
        make_optimizer(name, nn.Linear(2, 2), owner="Trainer", **options)  # type: ignore[arg-type]

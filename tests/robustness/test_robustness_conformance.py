"""One contract, checked on every registered attack on the undefended digits CNN.

Each attack must: declare every parameter of its constructor and check it there, with the one
message format; return examples inside its eps ball and the valid range, with no NaN, and
result tensors on the input's device; give the same result for the same seed, whatever the
batch size; beat uniform random noise of the same size; and, if targeted, hit its targets.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import nn

import trustlab.robustness
import trustlab.robustness.autoattack  # noqa: F401 - registers the attacks AutoAttack runs
from conftest import L2_EPS, LINF_EPS
from trustlab.core.errors import ConfigurationError
from trustlab.core.params import MSG_PARAM, Seed, parameter_constraints
from trustlab.robustness import (
    Attack,
    AttackResult,
    ExampleRandom,
    Norm,
    get_attack,
    list_attacks,
    make_attack,
)
from trustlab.robustness.norms import per_example_norm

#: Settings that keep each attack quick here; only those the constructor takes are passed, so
#: an attack added later is tested with its defaults.
QUICK: dict[str, Any] = {
    "steps": 10,
    "n_iter": 10,
    "n_targets": 3,
    "n_target_classes": 3,
    "n_queries": 150,
    "binary_search_steps": 4,
    "initial_const": 0.1,
    "lr": 0.05,
}
N = 32


def cases() -> list[tuple[str, Norm]]:
    """Every registered attack in each of its Linf and L2 threat models."""
    return [
        (name, norm)
        for name in list_attacks()
        for norm in (Norm.LINF, Norm.L2)
        if norm in get_attack(name).norms
    ]


def build(name: str, norm: Norm) -> Attack:
    cls = get_attack(name)
    accepted = inspect.signature(cls).parameters
    eps = LINF_EPS if norm is Norm.LINF else L2_EPS
    options = {key: value for key, value in QUICK.items() if key in accepted}
    if name.startswith("cw"):
        options["steps"] = 40
    return cls(norm=norm, eps=eps, seed=3, **options)


def run(
    attack: Attack,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
) -> AttackResult:
    return attack.generate(
        model=model, x=x, y=y, targets=targets if attack.targeted else None, batch_size=batch_size
    )


def noise_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, norm: Norm) -> float:
    """Accuracy under random noise of the attack's size: random corners of the Linf ball, or
    random directions on the L2 sphere."""
    rng = ExampleRandom(seed=11)
    keys = torch.arange(len(y))
    if norm is Norm.LINF:
        signs = torch.sign(rng.uniform(indices=keys, step=0, shape=tuple(x.shape[1:])) - 0.5)
        noisy = x + LINF_EPS * signs
    else:
        direction = rng.normal(indices=keys, step=0, shape=tuple(x.shape[1:]))
        noisy = x + L2_EPS * direction / per_example_norm(direction, Norm.L2).reshape(-1, 1, 1, 1)
    with torch.no_grad():
        return float((model(noisy.clamp(0, 1)).argmax(1) == y).float().mean())


@pytest.fixture(scope="module")
def inputs(
    attack_inputs: tuple[torch.Tensor, torch.Tensor], digits_cnn: nn.Module
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = attack_inputs[0][:N], attack_inputs[1][:N]
    # Targets: the most likely class other than the true one.
    with torch.no_grad():
        targets = digits_cnn(x).scatter(1, y[:, None], float("-inf")).argmax(1)
    return x, y, targets


@pytest.mark.parametrize(
    ("name", "norm"), cases(), ids=lambda case: str(getattr(case, "value", case))
)
def test_attack_contract(
    name: str,
    norm: Norm,
    digits_cnn: nn.Module,
    inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    x, y, targets = inputs
    attack = build(name, norm)
    result = run(attack, digits_cnn, x, y, targets, batch_size=64)

    # Every tensor of the result is on the input's device.
    tensors = [result.x_adv, result.y, result.clean_correct, result.adv_correct, result.success]
    tensors += [result.perturbation] + ([] if result.targets is None else [result.targets])
    assert all(tensor.device == x.device for tensor in tensors)

    # In the ball, in the range, finite; the reported perturbation is the real one.
    assert result.x_adv.shape == x.shape
    assert bool(torch.isfinite(result.x_adv).all())
    assert bool(((result.x_adv >= 0) & (result.x_adv <= 1)).all())
    size = per_example_norm(result.x_adv - x, attack.norm)
    assert torch.allclose(size, result.perturbation)
    if attack.eps is not None:
        assert bool((size <= attack.eps * (1 + 1e-5) + 1e-6).all())

    # The same seed gives the same result; so does another batch size.
    again = run(attack, digits_cnn, x, y, targets, batch_size=64)
    assert torch.equal(again.x_adv, result.x_adv)
    small = run(attack, digits_cnn, x, y, targets, batch_size=7)
    assert torch.equal(small.success, result.success)
    assert torch.allclose(small.x_adv, result.x_adv, atol=1e-4)

    # Far stronger than random noise of the same size.
    noise = noise_accuracy(digits_cnn, x, y, attack.norm)
    assert noise > 0.8
    assert result.robust_accuracy < noise - 0.4, (result.robust_accuracy, noise)

    # Targeted attacks hit their targets.
    if attack.targeted:
        assert result.targets is not None and torch.equal(result.targets, targets)
        with torch.no_grad():
            hit = digits_cnn(result.x_adv).argmax(1) == targets
        assert torch.equal(result.success, hit)
        assert result.success_rate > 0.5


def keyword_parameters(cls: type) -> list[str]:
    """The keyword-only parameters of ``cls``'s constructor."""
    parameters = inspect.signature(cls).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


@pytest.mark.parametrize("name", list_attacks())
def test_attack_parameters_are_declared_and_checked_at_construction(name: str) -> None:
    cls = get_attack(name)
    declared = parameter_constraints(cls)
    assert set(keyword_parameters(cls)) <= set(declared), name
    attack = make_attack(name, options={"eps": 0.1})
    assert attack.norm in cls.norms and attack.seed == 0 and attack.bounds == (0.0, 1.0)
    with pytest.raises(ConfigurationError) as info:
        make_attack(name, options={"eps": 0.1, "seed": -1})
    message = MSG_PARAM.format(name="seed", owner=cls.__name__, rule=Seed.rule, value=-1)
    assert str(info.value) == message
    with pytest.raises(ConfigurationError, match="Unknown option"):
        make_attack(name, options={"eps": 0.1, "no_such_option": 1})

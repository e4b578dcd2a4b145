"""One contract per family, checked on every registered extraction attack, defence and detector.

Each member must: be built by name with its minimal options; refuse a bad parameter at
construction with the one parameter message; and do its verb on a tiny model. Attacks
``extract`` a surrogate within the budget, reproducibly; output defences ``apply`` without
changing shapes and return probabilities where they say so; detectors ``observe`` and their
per-client state round-trips through JSON, ``state_dict`` and ``load_state_dict``.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.errors import (
    ConfigurationError,
    DataError,
    DuplicateNameError,
    UnknownNameError,
)
from trustlab.core.params import MSG_PARAM
from trustlab.core.registry import Registry
from trustlab.extraction import (
    DEFENCES,
    DETECTORS,
    EXTRACTION_ATTACKS,
    LocalOracle,
    build_attack,
    build_defence,
    build_detector,
)
from trustlab.extraction.defences import Rounding

N_FEATURES, N_CLASSES, BUDGET = 4, 3, 30

#: Options each attack needs or that keep it quick; only those its constructor takes are given.
ATTACK_OPTIONS: dict[str, Any] = {
    "epochs": 1,
    "round_size": 10,
    "substitute_epochs": 3,
    "initial": 10,
    "step": 10,
}
#: The options without which a defence or detector cannot be built.
MINIMAL: dict[str, dict[str, Any]] = {
    "noise": {"scale": 0.05},
    "reverse-sigmoid": {"beta": 0.5, "gamma": 0.5},
    "embedding-transform": {"secret": "course"},
}
#: One invalid parameter per defence and detector (every registered member needs an entry).
BAD: dict[str, tuple[str, object]] = {
    "chain": ("defences", [Rounding]),
    "embedding-transform": ("dim", 0),
    "noise": ("scale", 0.0),
    "prada": ("threshold", 1.5),
    "reverse-sigmoid": ("gamma", -1.0),
    "rounding": ("decimals", -1),
    "top-k": ("k", 0),
}


def assert_param_message(error: pytest.ExceptionInfo[ConfigurationError], name: str) -> None:
    """The message has the shape of ``MSG_PARAM`` and names the parameter."""
    shape = re.escape(MSG_PARAM.format(name=name, owner="@", rule="@", value="@"))
    pattern = shape.replace(re.escape("'@'"), ".+").replace("@", ".+")
    assert re.fullmatch(pattern, str(error.value)), str(error.value)


def pool() -> torch.Tensor:
    return torch.rand(60, N_FEATURES, generator=torch.Generator().manual_seed(0))


def attack_options(name: str) -> dict[str, Any]:
    accepted = inspect.signature(EXTRACTION_ATTACKS.get(name)).parameters
    x = pool()
    data = {
        "pool": x,
        "pool_labels": torch.arange(len(x)) % N_CLASSES,
        "seed_x": x[:5],
        "query_x": x,
        **ATTACK_OPTIONS,
    }
    return {key: value for key, value in data.items() if key in accepted}


def tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(N_FEATURES, 8), nn.ReLU(), nn.Linear(8, N_CLASSES))


def test_every_family_is_registered() -> None:
    assert EXTRACTION_ATTACKS.names() == [
        "active-thief",
        "distillation",
        "jacobian-augmentation",
        "knockoff-nets",
    ]
    assert DEFENCES.names() == sorted(set(BAD) - set(DETECTORS.names()))
    assert DETECTORS.names() == ["prada"]


@pytest.mark.parametrize("registry", [EXTRACTION_ATTACKS, DEFENCES, DETECTORS])
def test_registries_are_strict(registry: Registry[Any]) -> None:
    name = registry.names()[0]
    with pytest.raises(DuplicateNameError):
        registry.add(name, registry.get(name))
    with pytest.raises(UnknownNameError, match=f"Known {registry.kind}s: {name}"):
        registry.get("no-such-member")


@pytest.mark.parametrize("name", EXTRACTION_ATTACKS.names())
def test_attack_contract(name: str) -> None:
    options = attack_options(name)

    def run() -> tuple[Any, LocalOracle, nn.Module]:
        oracle = LocalOracle(model=tiny(0).eval(), budget=100)
        surrogate = tiny(1)
        attack = build_attack(name, options)
        x_eval = pool()[:20]
        with torch.no_grad():
            reference = oracle.model(x_eval)
        result = attack.extract(
            oracle=oracle, surrogate=surrogate, budget=BUDGET, eval_x=x_eval, eval_outputs=reference
        )
        return result, oracle, surrogate

    result, oracle, surrogate = run()
    assert result.model is surrogate
    assert 0 < result.queries_used == oracle.queries_used <= BUDGET
    assert result.transfer_x.shape == (result.queries_used, N_FEATURES)
    assert result.transfer_y.shape == (result.queries_used, N_CLASSES)
    assert result.target == "probabilities"
    assert result.history and result.history[-1].queries == result.queries_used
    queries = [point.queries for point in result.history]
    assert queries == sorted(queries)
    assert all(point.fidelity is not None and 0 <= point.fidelity <= 1 for point in result.history)

    again, _, _ = run()
    assert torch.equal(again.transfer_x, result.transfer_x)
    for mine, theirs in zip(again.model.parameters(), result.model.parameters(), strict=True):
        assert torch.equal(mine, theirs)

    owner = type(build_attack(name, options)).__name__
    for parameter, value in [("epochs", 0), ("lr", 0.0), ("seed", -1), ("batch_size", 0)]:
        with pytest.raises(ConfigurationError) as error:
            build_attack(name, {**options, parameter: value})
        assert_param_message(error, parameter)
        assert f"parameter of {owner} must be" in str(error.value)


@pytest.mark.parametrize("name", DEFENCES.names())
def test_defence_contract(name: str) -> None:
    defence = build_defence(name, MINIMAL.get(name))
    generator = torch.Generator().manual_seed(0)
    probs = F.softmax(torch.randn(6, N_CLASSES, generator=generator), dim=1)
    inputs = torch.rand(6, N_FEATURES, generator=generator)
    out = defence.apply(outputs=probs, inputs=inputs, client_id="team-a")
    assert out.shape == probs.shape and out.dtype == probs.dtype
    assert bool(torch.isfinite(out).all())
    again = defence.apply(outputs=probs, inputs=inputs, client_id="team-a")
    assert torch.equal(out, again)
    if defence.returns_probabilities:
        assert bool(((out >= 0) & (out <= 1)).all())
        assert torch.allclose(out.sum(dim=1), torch.ones(6), atol=1e-5)

    embeddings = torch.randn(6, 5, generator=generator) * 3
    if defence.probabilities_only:
        with pytest.raises(DataError, match="works on probability vectors"):
            defence.apply(outputs=embeddings, inputs=inputs, client_id="team-a")
    else:
        defended = defence.apply(outputs=embeddings, inputs=inputs, client_id="team-a")
        assert defended.shape == embeddings.shape

    assert repr(defence).startswith(type(defence).__name__ + "(")
    parameter, value = BAD[name]
    with pytest.raises(ConfigurationError) as error:
        build_defence(name, {**MINIMAL.get(name, {}), parameter: value})
    assert_param_message(error, parameter)


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_contract(name: str) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 2, 2, generator=generator)
    labels = torch.randint(0, N_CLASSES, (40,), generator=generator)

    whole = build_detector(name, MINIMAL.get(name))
    expected = whole.observe(inputs=x, client_id="team-a", labels=labels)
    assert expected.n_queries == 40 and isinstance(expected.flagged, bool)
    assert isinstance(expected.reason, str) and expected.reason

    first = build_detector(name, MINIMAL.get(name))
    first.observe(inputs=x[:25], client_id="team-a", labels=labels[:25])
    saved = json.loads(json.dumps(first.state_dict("team-a")))
    second = build_detector(name, MINIMAL.get(name))
    second.load_state_dict("team-a", saved)
    assert second.state_dict("team-a") == first.state_dict("team-a")
    assert second.observe(inputs=x[25:], client_id="team-a", labels=labels[25:]) == expected
    assert second.state_dict("team-a") == whole.state_dict("team-a")
    # Clients are separate; reset forgets one.
    assert second.state_dict("team-b") == build_detector(name).state_dict("team-b")
    second.reset("team-a")
    assert second.state_dict("team-a") == build_detector(name).state_dict("team-a")

    parameter, value = BAD[name]
    with pytest.raises(ConfigurationError) as error:
        build_detector(name, {**MINIMAL.get(name, {}), parameter: value})
    assert_param_message(error, parameter)

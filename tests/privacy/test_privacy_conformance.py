"""One contract, checked on every registered membership-inference attack.

Each attack must: build with its defaults; refuse a bad value of every declared parameter at
construction, with the one parameter message; give one finite score per example from ``infer``
on a tiny model, the same as from ``infer_from_logits`` on that model's logits; and set no
fitted attribute (ending in ``_``) before it is fitted or calibrated. Attacks that need
reference models or population data get a tiny set built once (``REQUIRED``).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import MSG_PARAM, parameter_constraints
from trustlab.privacy import (
    MEMBERSHIP_ATTACKS,
    LossThresholdAttack,
    MembershipInferenceAttack,
    ReferenceModels,
)

ATTACKS = (
    "calibrated_loss",
    "label_only",
    "lira",
    "loss_threshold",
    "rmia",
    "shadow",
)

_generator = torch.Generator().manual_seed(0)
POPULATION_X = torch.randn(20, 4, generator=_generator)
POPULATION_Y = torch.randint(0, 3, (20,), generator=_generator)
REFERENCE = ReferenceModels.train(
    architecture="mlp",
    arguments={"in_features": 4, "num_classes": 3, "hidden": [8]},
    x=POPULATION_X,
    y=POPULATION_Y,
    n_models=2,
    epochs=1,
)
#: Values for the arguments without a default, by name.
REQUIRED = {
    "reference": REFERENCE,
    "population_x": POPULATION_X,
    "population_y": POPULATION_Y,
}


def _required(name: str) -> dict[str, object]:
    cls = MEMBERSHIP_ATTACKS.get(name)
    parameters = inspect.signature(cls).parameters.values()
    return {p.name: REQUIRED[p.name] for p in parameters if p.default is p.empty}


class _Bad:
    """A value no declared constraint of an attack accepts."""

    def __repr__(self) -> str:
        return "<bad value>"


def _fitted(obj: object) -> list[str]:
    return [name for name in vars(obj) if name.endswith("_") and not name.startswith("_")]


def _declared(name: str) -> list[tuple[str, str]]:
    cls = MEMBERSHIP_ATTACKS.get(name)
    accepted = inspect.signature(cls).parameters
    table = parameter_constraints(cls)
    return [(name, parameter) for parameter in table if parameter in accepted]


def test_the_registry_holds_the_attacks() -> None:
    assert set(ATTACKS) <= set(MEMBERSHIP_ATTACKS.names())
    assert MEMBERSHIP_ATTACKS.get("loss_threshold") is LossThresholdAttack
    for name in MEMBERSHIP_ATTACKS:
        assert issubclass(MEMBERSHIP_ATTACKS.get(name), MembershipInferenceAttack)


@pytest.mark.parametrize("name", MEMBERSHIP_ATTACKS.names())
def test_builds_with_defaults_and_keyword_only_arguments(name: str) -> None:
    cls = MEMBERSHIP_ATTACKS.get(name)
    attack = MEMBERSHIP_ATTACKS.build(name, _required(name))
    assert isinstance(attack, cls)
    for parameter in inspect.signature(cls).parameters.values():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert _fitted(attack) == []


@pytest.mark.parametrize(
    ("name", "parameter"), [case for name in MEMBERSHIP_ATTACKS.names() for case in _declared(name)]
)
def test_bad_parameter_fails_at_construction(name: str, parameter: str) -> None:
    cls = MEMBERSHIP_ATTACKS.get(name)
    bad = _Bad()
    rule = parameter_constraints(cls)[parameter].rule
    with pytest.raises(ConfigurationError) as info:
        cls(**{**_required(name), parameter: bad})
    assert str(info.value) == MSG_PARAM.format(
        name=parameter, owner=cls.__name__, rule=rule, value=bad
    )


@pytest.mark.parametrize("name", MEMBERSHIP_ATTACKS.names())
def test_infer_gives_one_finite_score_per_example(name: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = POPULATION_X[:10], POPULATION_Y[:10]
    attack = MEMBERSHIP_ATTACKS.build(name, _required(name))
    candidates = {}
    if "candidate_index" in inspect.signature(attack.infer).parameters:
        candidates["candidate_index"] = np.arange(10)
    scores = attack.infer(model=model, x=x, y=y, **candidates)
    assert isinstance(scores, np.ndarray) and scores.shape == (10,)
    assert np.isfinite(scores).all()
    # The same scores from logits computed outside: on every query the attack makes.
    queries = attack.queries(x) if hasattr(attack, "queries") else x.unsqueeze(0)
    extra: dict[str, object] = dict(candidates)
    accepted = inspect.signature(attack.infer_from_logits).parameters
    with torch.no_grad():
        logits = torch.stack([model(query) for query in queries]).squeeze(0)
        if "reference_logits" in accepted:
            extra["reference_logits"] = torch.stack(
                [REFERENCE.logits(query) for query in queries], dim=1
            )
        if "population_logits" in accepted:
            extra["population_logits"] = model(POPULATION_X)
    from_logits = attack.infer_from_logits(logits=logits, y=y, **extra)
    np.testing.assert_allclose(from_logits, scores, rtol=1e-6)
    assert _fitted(attack) == []


@pytest.mark.parametrize("name", MEMBERSHIP_ATTACKS.names())
def test_calibration_returns_self_and_sets_only_fitted_attributes(name: str) -> None:
    attack = MEMBERSHIP_ATTACKS.build(name, _required(name))
    if not hasattr(attack, "calibrate"):
        pytest.skip(f"{name} learns nothing")
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(12, 4), torch.randint(0, 3, (12,))
    before = set(vars(attack))
    returned = attack.calibrate(model=model, x=x, y=y, member=np.arange(12) % 2)
    assert returned is attack
    added = set(vars(attack)) - before
    assert added and all(name.endswith("_") for name in added)

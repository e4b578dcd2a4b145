"""One contract, checked on every registered fairness mitigation.

Each mitigation must: build with its defaults, from keyword-only arguments; refuse a bad value
of every declared parameter at construction, with the one parameter message; return itself
from ``fit`` on a tiny problem; set fitted attributes, all ending in ``_``, only there; and
report its gap and accuracy through ``evaluate``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import MSG_PARAM, parameter_constraints
from trustlab.fairness import (
    MITIGATION_CRITERIA,
    MITIGATIONS,
    AdversarialDebiasing,
    ExponentiatedGradient,
    FairnessConstrainedClassifier,
    FairnessMitigation,
    GroupThresholds,
    MitigationReport,
    ModelMitigation,
    Reweighing,
)


class _Bad:
    """A value no declared constraint of a mitigation accepts."""

    def __repr__(self) -> str:
        return "<bad value>"


def _public_state(obj: object) -> set[str]:
    return {name for name in vars(obj) if not name.startswith("_")}


def _declared() -> list[tuple[str, str]]:
    cases = []
    for name in MITIGATIONS.names():
        cls = MITIGATIONS.get(name)
        accepted = inspect.signature(cls).parameters
        cases += [(name, p) for p in parameter_constraints(cls) if p in accepted]
    return cases


def _problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(60, 3, generator=generator)
    group = (x[:, 0] > 0).long()
    y = ((x[:, 1] + group) > 0.5).long()
    return x, y, group


def test_the_registry_holds_every_mitigation() -> None:
    expected = {
        "reweighing": Reweighing,
        "constrained": FairnessConstrainedClassifier,
        "adversarial_debiasing": AdversarialDebiasing,
        "group_thresholds": GroupThresholds,
    }
    for name, cls in expected.items():
        assert MITIGATIONS.get(name) is cls
    for name in MITIGATIONS:
        assert issubclass(MITIGATIONS.get(name), FairnessMitigation)


@pytest.mark.parametrize("name", MITIGATIONS.names())
def test_builds_with_defaults_and_keyword_only_arguments(name: str) -> None:
    cls = MITIGATIONS.get(name)
    mitigation = MITIGATIONS.build(name)
    assert isinstance(mitigation, cls)
    assert mitigation.criterion in MITIGATION_CRITERIA
    for parameter in inspect.signature(cls).parameters.values():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert not [attribute for attribute in _public_state(mitigation) if attribute.endswith("_")]


@pytest.mark.parametrize(("name", "parameter"), _declared())
def test_bad_parameter_fails_at_construction(name: str, parameter: str) -> None:
    cls = MITIGATIONS.get(name)
    bad = _Bad()
    rule = parameter_constraints(cls)[parameter].rule
    with pytest.raises(ConfigurationError) as info:
        cls(**{parameter: bad})
    assert str(info.value) == MSG_PARAM.format(
        name=parameter, owner=cls.__name__, rule=rule, value=bad
    )


@pytest.mark.parametrize("name", MITIGATIONS.names())
def test_fit_returns_self_and_sets_only_fitted_attributes(name: str) -> None:
    x, y, group = _problem()
    mitigation = MITIGATIONS.get(name)()
    if isinstance(mitigation, ModelMitigation):
        mitigation.epochs, mitigation.batch_size = 2, 16
    if isinstance(mitigation, ExponentiatedGradient):
        mitigation.max_iter = 1  # one round of the game keeps the test fast
    before = _public_state(mitigation)
    with pytest.raises(ConfigurationError, match="not fitted"):
        if isinstance(mitigation, ModelMitigation):
            mitigation.predict(x=x)
        else:
            mitigation.predict(scores=x[:, 1], sensitive_features=group)  # type: ignore[attr-defined]
    if isinstance(mitigation, ModelMitigation):
        torch.manual_seed(0)
        returned = mitigation.fit(model=torch.nn.Linear(3, 2), x=x, y=y, sensitive_features=group)
        report = mitigation.evaluate(x=x, y=y, sensitive_features=group)
        assert mitigation.predict(x=x).shape == (60,)
    else:
        returned = mitigation.fit(scores=x[:, 1], y=y, sensitive_features=group)  # type: ignore[attr-defined]
        report = mitigation.evaluate(scores=x[:, 1], y=y, sensitive_features=group)  # type: ignore[attr-defined]
    assert returned is mitigation
    added = _public_state(mitigation) - before
    assert {"gap_", "accuracy_"} <= added
    assert all(attribute.endswith("_") for attribute in added)
    assert 0.0 <= mitigation.gap_ <= 1.0 and 0.0 <= mitigation.accuracy_ <= 1.0
    assert isinstance(report, MitigationReport)
    assert report.criterion == mitigation.criterion and report.n_examples == 60
    assert np.isfinite([report.gap, report.accuracy]).all()

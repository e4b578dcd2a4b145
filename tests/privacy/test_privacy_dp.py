"""DP-SGD through Opacus: parameters, refusals, the accountant's epsilon and reproducibility."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import MSG_PARAM
from trustlab.core.training import accuracy
from trustlab.privacy import DPSGD
from trustlab.privacy.dp import MSG_DELTA_TOO_LARGE, MSG_NO_OPACUS, DPReport

requires_opacus = pytest.mark.skipif(
    importlib.util.find_spec("opacus") is None, reason="needs the 'dp' extra (opacus)"
)

MLP = {"in_features": 4, "hidden": [16]}


def _data(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def _trainer(**overrides: object) -> DPSGD:
    arguments: dict[str, object] = {
        "architecture": "mlp",
        "arguments": MLP,
        "epsilon": 4.0,
        "delta": 1e-3,
        "epochs": 3,
        "batch_size": 32,
    }
    arguments.update(overrides)
    return DPSGD(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("epsilon", -3, "a finite float > 0"),
        ("delta", 1.0, "a finite float in (0, 1)"),
        ("max_grad_norm", 0, "a finite float > 0"),
        ("epochs", 0, "an int >= 1"),
        ("accountant", "gdp", "one of 'rdp', 'prv'"),
        ("optimizer", "lbfgs", "one of 'adam', 'adamw', 'sgd'"),
    ],
)
def test_parameters_are_checked_at_construction(name: str, value: object, rule: str) -> None:
    expected = MSG_PARAM.format(name=name, owner="DPSGD", rule=rule, value=value)
    with pytest.raises(ConfigurationError) as info:
        _trainer(**{name: value})
    assert str(info.value) == expected


@requires_opacus
def test_spends_the_target_epsilon_and_returns_a_plain_model() -> None:
    x, y = _data()
    trainer = _trainer().fit(x=x, y=y)
    report = trainer.report_
    assert isinstance(report, DPReport)
    assert report.accountant == "rdp"
    assert 3.5 < report.epsilon <= 4.0 + 1e-2
    assert report.noise_multiplier > 0
    assert report.sample_rate == pytest.approx(32 / 256)
    assert report.steps == 3 * 8
    assert len(report.losses) == 3
    assert set(report.summary()) >= {"epsilon", "delta", "accountant", "noise_multiplier"}
    model = trainer.model_
    assert type(model).__name__ == "MLP"
    assert not model.training
    assert model.trustlab_architecture["name"] == "mlp"
    assert not any(hasattr(param, "grad_sample") for param in model.parameters())


@pytest.mark.slow
@requires_opacus
def test_learns_and_is_reproducible() -> None:
    x, y = _data(512)
    first = _trainer(epsilon=8.0, epochs=5).fit(x=x, y=y)
    second = _trainer(epsilon=8.0, epochs=5).fit(x=x, y=y)
    assert accuracy(first.model_, x, y) > 0.8
    for a, b in zip(first.model_.parameters(), second.model_.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
@requires_opacus
def test_prv_accountant() -> None:
    x, y = _data()
    report = _trainer(accountant="prv", epochs=1).fit(x=x, y=y).report_
    assert report.accountant == "prv"
    assert report.epsilon <= 4.0 + 1e-2


@requires_opacus
def test_refuses_batch_norm() -> None:
    x = np.zeros((8, 3, 8, 8), dtype=np.float32)
    y = np.zeros(8, dtype=np.int64)
    trainer = DPSGD(architecture="resnet18", epsilon=1.0, delta=1e-2)
    with pytest.raises(ConfigurationError, match="BatchNorm"):
        trainer.fit(x=x, y=y)
    assert not hasattr(trainer, "model_")


@requires_opacus
def test_refuses_a_delta_that_allows_leaking_an_example() -> None:
    x, y = _data(100)
    with pytest.raises(ConfigurationError) as info:
        _trainer(delta=0.05).fit(x=x, y=y)
    assert str(info.value) == MSG_DELTA_TOO_LARGE.format(delta=0.05, n=100, bound=0.01)


@requires_opacus
def test_refuses_bad_data() -> None:
    x, y = _data()
    with pytest.raises(DataError, match="same number of examples"):
        _trainer().fit(x=x, y=y[:-1])
    with pytest.raises(DataError, match=r"class indices in \[0, 2\)"):
        _trainer().fit(x=x, y=y + 5)


def test_names_the_extra_when_opacus_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opacus", None)
    x, y = _data()
    with pytest.raises(ImportError) as info:
        _trainer().fit(x=x, y=y)
    assert str(info.value) == MSG_NO_OPACUS
    assert "trustlab[dp]" in MSG_NO_OPACUS

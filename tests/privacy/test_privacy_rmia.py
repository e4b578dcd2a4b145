"""Tests of RMIA against the paper's definition on hand-made probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from privacy_population import Population
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.core.metrics import auc
from trustlab.privacy import RMIA, ReferenceModels


def _constant_model(logits: torch.Tensor) -> nn.Module:
    """A model that returns a fixed row of logits per example, looked up by x[:, 0]."""

    class Lookup(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(logits.float(), requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.table[x[:, 0].long()]

    return Lookup()


def _logit(p: np.ndarray) -> torch.Tensor:
    """Two-class logits whose softmax probability of class 1 is ``p``."""
    values = torch.as_tensor(np.log(p) - np.log1p(-p), dtype=torch.float64)
    return torch.stack([torch.zeros_like(values), values], dim=-1)


# Rows 0-1 are candidates, rows 2-4 population samples z; every label is 1.
TARGET_P = np.array([0.9, 0.6, 0.5, 0.7, 0.95])
REFERENCE_P = np.array([0.6, 0.7, 0.5, 0.5, 0.9])


def _attack(**options: object) -> tuple[RMIA, nn.Module, torch.Tensor]:
    reference = ReferenceModels(
        architecture="mlp",
        arguments={},
        membership=np.zeros((1, 2), dtype=bool),
        models=[_constant_model(_logit(REFERENCE_P))],
        recipe={},
        population={"n": 2, "sha256": ""},
    )
    x = torch.arange(5, dtype=torch.float32).reshape(5, 1)
    attack = RMIA(
        reference=reference,
        population_x=x[2:],
        population_y=np.ones(3, dtype=np.int64),
        **options,  # type: ignore[arg-type]
    )
    return attack, _constant_model(_logit(TARGET_P)), x


def _expected(a: float, gamma: float) -> np.ndarray:
    marginal = ((1 + a) * REFERENCE_P + (1 - a)) / 2
    ratio = TARGET_P / marginal
    ratio_x, ratio_z = ratio[:2], ratio[2:]
    return np.array([np.mean(rx / ratio_z >= gamma) for rx in ratio_x])


@pytest.mark.parametrize(("a", "gamma"), [(0.3, 1.0), (0.0, 1.0), (1.0, 1.0), (0.5, 1.2)])
def test_score_is_the_fraction_of_dominated_population_samples(a: float, gamma: float) -> None:
    attack, target, x = _attack(a=a, gamma=gamma)
    scores = attack.infer(model=target, x=x[:2], y=np.ones(2, dtype=np.int64))
    np.testing.assert_allclose(scores, _expected(a, gamma))


def test_offline_approximation_formula() -> None:
    # a = 1 uses the OUT models' probability as Pr(x); a = 0 averages it with 1.
    attack, target, x = _attack(a=1.0)
    assert attack.a == 1.0
    # Ratios p_target / p_reference: candidates 1.5 and 0.86 against z 1.0, 1.4 and 1.06.
    np.testing.assert_allclose(_expected(1.0, 1.0), [1.0, 0.0])
    scores = attack.infer(model=target, x=x[:2], y=np.ones(2, dtype=np.int64))
    np.testing.assert_allclose(scores, [1.0, 0.0])
    lenient, _, _ = _attack(a=1.0, gamma=1.2)
    lenient_scores = lenient.infer(model=target, x=x[:2], y=np.ones(2, dtype=np.int64))
    np.testing.assert_allclose(lenient_scores, [2 / 3, 0.0])


def test_a_larger_gamma_never_raises_a_score() -> None:
    attack, target, x = _attack(gamma=1.0)
    strict, _, _ = _attack(gamma=2.0)
    y = np.ones(2, dtype=np.int64)
    assert (
        strict.infer(model=target, x=x[:2], y=y) <= attack.infer(model=target, x=x[:2], y=y)
    ).all()


@pytest.mark.parametrize("value", [0, -1.0, float("inf")])
def test_bad_gamma_is_refused(population: Population, value: float) -> None:
    with pytest.raises(ConfigurationError, match="'gamma' parameter of RMIA"):
        RMIA(
            reference=population.reference,
            population_x=population.z_x,
            population_y=population.z_y,
            gamma=value,
        )


def test_rmia_with_one_and_two_reference_models(population: Population) -> None:
    for n_models in (1, 2):
        reference = population.reference.subset(range(n_models))
        attack = RMIA(reference=reference, population_x=population.z_x, population_y=population.z_y)
        # One model has no OUT model for the candidates it trained on: without candidate_index
        # every candidate counts as OUT, which is close enough for a single model.
        index = np.arange(len(population.y)) if n_models == 2 else None
        scores = attack.infer(
            model=population.target, x=population.x, y=population.y, candidate_index=index
        )
        assert ((scores >= 0) & (scores <= 1)).all()
        assert auc(y_true=population.member, scores=scores) > 0.6

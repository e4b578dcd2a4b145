"""Adebayo et al.'s randomisation checks: model-dependent maps pass, an edge detector fails."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from trustlab.core.params import Constraint
from trustlab.explain import (
    Explainer,
    IntegratedGradients,
    Saliency,
    data_randomisation,
    model_randomisation,
    permuted_label_model,
    rank_correlation,
)
from trustlab.explain.sanity import randomisable_layers


class InputMagnitude(Explainer):
    """A "method" that ignores the model: the map is the input's magnitude."""

    name = "input_magnitude"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    def __init__(self) -> None:
        self.batch_size = None

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        return x.abs()


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def test_rank_correlation_known_values() -> None:
    a = np.arange(12.0).reshape(2, 6)
    assert rank_correlation(a, a).tolist() == [1.0, 1.0]
    assert rank_correlation(a, -a, absolute=False).tolist() == [-1.0, -1.0]
    assert rank_correlation(a, np.ones_like(a)).tolist() == [0.0, 0.0]


def test_cascading_randomisation_flags_a_model_blind_method() -> None:
    model = _mlp()
    x = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    blind = model_randomisation(model=model, x=x, explainer=InputMagnitude())
    assert blind.flagged and blind.correlations[-1] == pytest.approx(1.0)
    assert blind.steps == ["4", "2", "0"], "the output layer is randomised first"
    assert "fails the model parameters randomisation check" in blind.reason
    gradient = model_randomisation(model=model, x=x, explainer=Saliency())
    assert not gradient.flagged and gradient.correlations[-1] < 0.5
    assert len(gradient.final) == 16
    for original, now in zip(before, model.parameters(), strict=True):
        assert torch.equal(original, now), "the model itself is left unchanged"


@pytest.mark.slow
def test_data_randomisation_compares_with_a_permuted_label_model() -> None:
    torch.manual_seed(1)
    model = _mlp()
    x = torch.randn(64, 10, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    randomised = permuted_label_model(model=model, x=x, y=y, epochs=2, seed=3)
    assert randomisable_layers(randomised) == ["0", "2", "4"]
    blind = data_randomisation(
        model=model, randomised_model=randomised, x=x[:8], explainer=InputMagnitude()
    )
    assert blind.flagged and blind.check == "data" and blind.steps == ["permuted labels"]
    honest = data_randomisation(
        model=model, randomised_model=randomised, x=x[:8], explainer=IntegratedGradients(n_steps=8)
    )
    assert honest.correlations[-1] < blind.correlations[-1]

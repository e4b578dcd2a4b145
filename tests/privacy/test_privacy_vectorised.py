"""Tests of the vectorised reference-model training: the direct MLP path, vmap, groups, CUDA."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from privacy_population import make_data
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.core.models import ARCHITECTURES, build_model, register_architecture
from trustlab.core.seeding import seeded
from trustlab.privacy import ReferenceModels
from trustlab.privacy._vectorised import MSG_DIVERGED, _mlp_step, _Stacked, direct_layers
from trustlab.privacy.reference import MSG_DEVICE

MLP_ARGUMENTS = {"in_features": 5, "num_classes": 3, "hidden": [8, 7]}


def _train(**overrides: object) -> ReferenceModels:
    x, y = make_data(60, seed=3)
    options: dict[str, object] = {
        "architecture": "mlp",
        "arguments": MLP_ARGUMENTS,
        "x": x[:, :5],
        "y": y,
        "n_models": 2,
        "epochs": 3,
        "batch_size": 16,
        "lr": 1e-2,
    }
    options.update(overrides)
    return ReferenceModels.train(**options)  # type: ignore[arg-type]


def test_direct_mlp_gradients_are_autograds() -> None:
    """The written-out backward pass against autograd on the loop's mean cross-entropy."""
    models = []
    for seed in range(3):
        with seeded(seed):
            models.append(build_model("mlp", arguments=MLP_ARGUMENTS))
    layers = direct_layers(models[0])
    assert layers is not None
    stacked = _Stacked(models, groups=[(0, 3)], optimizer="adam", lr=1e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    xb = torch.randn(3, 6, 5, generator=generator)
    yb = torch.randint(0, 3, (3, 6), generator=generator)
    sizes = [6, 4, 1]  # full, smaller last batch, one row; the rest is padding
    wb = torch.zeros(3, 6)
    for i, size in enumerate(sizes):
        wb[i, :size] = 1.0 / size
    losses = _mlp_step(stacked, layers, xb, yb, wb)
    for i, (model, size) in enumerate(zip(models, sizes, strict=True)):
        model.zero_grad()
        loss = F.cross_entropy(model(xb[i, :size]), yb[i, :size])
        loss.backward()
        torch.testing.assert_close(losses[i], loss.detach())
        for name, parameter in model.named_parameters():
            torch.testing.assert_close(stacked.grads[name][i], parameter.grad)


def test_direct_path_only_for_plain_mlps() -> None:
    assert direct_layers(build_model("mlp", arguments=MLP_ARGUMENTS)) is not None
    dropout = build_model("mlp", arguments={**MLP_ARGUMENTS, "dropout": 0.1})
    assert direct_layers(dropout) is None
    frozen = build_model("mlp", arguments=MLP_ARGUMENTS)
    frozen.head.bias.requires_grad_(False)
    assert direct_layers(frozen) is None


def test_vmap_path_matches_the_loop() -> None:
    @register_architecture("test-tanh-net")
    class TanhNet(nn.Module):
        def __init__(self, *, in_features: int = 5) -> None:
            super().__init__()
            self.body = nn.Linear(in_features, 6)
            self.head = nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.tanh(self.body(x)))

    try:
        options = {"architecture": "test-tanh-net", "arguments": {}, "optimizer": "adamw"}
        vectorised = _train(**options, vectorise=True, weight_decay=1e-2)
        sequential = _train(**options, vectorise=False, weight_decay=1e-2)
    finally:
        ARCHITECTURES.remove("test-tanh-net")
    assert vectorised.recipe["vectorised"]
    x, _ = make_data(60, seed=3)
    torch.testing.assert_close(
        vectorised.logits(x[:, :5]), sequential.logits(x[:, :5]), atol=1e-4, rtol=1e-4
    )


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_models_with_fewer_steps_rest_untouched(optimizer: str) -> None:
    """33 rows, batches of 16: halves of 16 and 17 rows take 1 and 2 steps per epoch."""
    x, y = make_data(33, seed=1)
    options = {"n_models": 3, "x": x[:, :5], "y": y, "epochs": 2, "optimizer": optimizer}
    vectorised = _train(**options, vectorise=True)
    sequential = _train(**options, vectorise=False)
    assert {int(row.sum()) for row in vectorised.membership} == {16, 17}
    for a, b in zip(vectorised.models, sequential.models, strict=True):
        for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-5, msg=name)


def test_a_diverging_run_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("The training loss of reference")):
        _train(lr=1e38, vectorise=True)
    message = MSG_DIVERGED.format(model=0, loss="nan", epoch=1, lr=0.01)
    assert "lower the learning rate" in message


@pytest.mark.parametrize("device", ["not-a-device", "cuda:0"])
def test_unusable_device_is_refused(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigurationError, match=re.escape(f"got {device!r}")):
        _train(device=device)
    assert "available torch device" in MSG_DEVICE


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("vectorise", [True, False])
def test_training_on_cuda_matches_the_cpu(vectorise: bool) -> None:
    on_cpu = _train(vectorise=vectorise)
    on_cuda = _train(vectorise=vectorise, device="cuda")
    assert all(next(model.parameters()).device.type == "cpu" for model in on_cuda.models)
    x, _ = make_data(60, seed=3)
    torch.testing.assert_close(
        on_cuda.logits(x[:, :5]), on_cpu.logits(x[:, :5]), atol=1e-3, rtol=1e-3
    )

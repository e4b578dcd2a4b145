"""Every detector and corruption runs where the model and inputs are (CPU, and CUDA if any),
and gives the same numbers there as on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustlab.core.models import build_model
from trustlab.uncertainty import (
    CORRUPTIONS,
    OOD_DETECTORS,
    corrupt,
    corruption_accuracy,
    model_outputs,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def setup() -> tuple[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    model = build_model("digits-cnn").eval()
    rng = np.random.default_rng(0)
    x_fit = rng.random((60, 1, 8, 8)).astype(np.float32)
    y_fit = np.arange(60) % 10
    x = rng.random((12, 1, 8, 8)).astype(np.float32)
    return model, x_fit, y_fit, x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", OOD_DETECTORS.names())
def test_detectors_agree_across_devices(name: str, device: str, setup) -> None:
    model, x_fit, y_fit, x = setup
    options: dict[str, object] = {"k": 3} if name == "knn" else {}
    if name == "mahalanobis":
        options = {"eps": 0.01}
    reference = OOD_DETECTORS.build(name, options).fit(model=model, x=x_fit, y=y_fit)
    expected = reference.score(model=model, x=x)
    moved = model.to(device)
    try:
        detector = OOD_DETECTORS.build(name, options).fit(model=moved, x=x_fit, y=y_fit)
        scores = detector.score(model=moved, x=torch.from_numpy(x).to(device))
    finally:
        model.to("cpu")
    np.testing.assert_allclose(scores, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_corruptions_stay_on_the_device_and_match_the_cpu(device: str, setup) -> None:
    _, _, _, x = setup
    images = torch.from_numpy(x)
    for name in CORRUPTIONS.names():
        expected = corrupt(images, corruption=name, severity=3, seed=5)
        out = corrupt(images.to(device), corruption=name, severity=3, seed=5)
        assert out.device.type == device
        torch.testing.assert_close(out.cpu(), expected, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_model_outputs_and_corruption_accuracy_on_the_device(device: str, setup) -> None:
    model, _, y, x = setup
    moved = model.to(device)
    try:
        out = model_outputs(model=moved, x=x)
        assert out.logits.device.type == "cpu" and out.features.shape == (12, 128)
        report = corruption_accuracy(
            model=moved, x=x, y=y[:12], corruptions=["contrast"], severities=[2]
        )
        assert 0.0 <= report.accuracy["contrast"][2] <= 1.0
    finally:
        model.to("cpu")

"""Natural corruptions: shape, range, determinism and severity; accuracy and the mCE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustlab.core.errors import DataError
from trustlab.core.models import build_model
from trustlab.uncertainty import CORRUPTIONS, SEVERITIES, corrupt, corruption_accuracy


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(6, 3, 12, 12, generator=generator), 3, 1, 1)
    return smooth.clamp(0.05, 0.95)


def test_the_registered_corruptions() -> None:
    assert CORRUPTIONS.names() == [
        "brightness",
        "contrast",
        "gaussian_blur",
        "gaussian_noise",
        "impulse_noise",
        "jpeg_compression",
        "pixelate",
        "shot_noise",
    ]


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_every_corruption_keeps_shape_range_and_seed(name: str, images: torch.Tensor) -> None:
    distances = []
    for severity in SEVERITIES:
        out = corrupt(images, corruption=name, severity=severity, seed=3)
        assert out.shape == images.shape and out.dtype == images.dtype
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        again = corrupt(images, corruption=name, severity=severity, seed=3)
        assert torch.equal(out, again)
        distances.append(float((out - images).abs().mean()))
    assert distances[-1] > distances[0] > 0.0  # severity 5 is further from clean than 1


def test_grey_images_and_bad_inputs(images: torch.Tensor) -> None:
    grey = images[:, :1]
    assert corrupt(grey, corruption="jpeg_compression", severity=2).shape == grey.shape
    with pytest.raises(DataError, match=r"values in \[0, 1\]"):
        corrupt(images * 300, corruption="contrast", severity=1)
    with pytest.raises(DataError, match="shape"):
        corrupt(images[0], corruption="contrast", severity=1)


def test_noise_depends_on_the_seed(images: torch.Tensor) -> None:
    a = corrupt(images, corruption="gaussian_noise", severity=1, seed=0)
    b = corrupt(images, corruption="gaussian_noise", severity=1, seed=1)
    assert not torch.equal(a, b)


def test_corruption_accuracy_and_mce_against_itself() -> None:
    torch.manual_seed(0)
    model = build_model("digits-cnn")
    rng = np.random.default_rng(0)
    x = rng.random((20, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    events = []
    report = corruption_accuracy(
        model=model,
        x=x,
        y=y,
        corruptions=["contrast", "gaussian_noise"],
        severities=[1, 5],
        progress=events.append,
    )
    assert set(report.accuracy) == {"contrast", "gaussian_noise"}
    assert set(report.accuracy["contrast"]) == {1, 5}
    assert report.mce is None and len(events) == 4
    versus_itself = corruption_accuracy(
        model=model,
        x=x,
        y=y,
        corruptions=["contrast", "gaussian_noise"],
        severities=[1, 5],
        baseline=report,
    )
    assert versus_itself.mce == pytest.approx(1.0)
    assert versus_itself.to_json()["mce"] == pytest.approx(1.0)

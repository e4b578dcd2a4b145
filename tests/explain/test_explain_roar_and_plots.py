"""ROAR-lite and the explanation plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from trustlab.core.progress import ProgressEvent
from trustlab.explain import deletion_curve, plot_explanations, roar_lite
from trustlab.explain.metrics import remove_top_pixels


def test_remove_top_pixels_fills_the_most_relevant_first() -> None:
    x = torch.ones(1, 2, 2, 2)
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
    out = remove_top_pixels(x, maps, fraction=0.5, fill=torch.tensor([0.0, 5.0]))
    assert out[0, 0].tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert out[0, 1].tolist() == [[5.0, 5.0], [1.0, 1.0]]


@pytest.mark.slow
def test_roar_lite_drops_faster_with_the_true_relevance() -> None:
    # The label is decided by 4 of 36 pixels; the right map marks them.
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(600, 1, 6, 6, generator=generator)
    y = (x[:, 0, :2, :2].sum(dim=(1, 2)) > 2.0).long()
    maps = torch.zeros(600, 6, 6)
    maps[:, :2, :2] = 1.0 + torch.rand(600, 2, 2, generator=generator)

    def build() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(36, 32), nn.ReLU(), nn.Linear(32, 2))

    events: list[ProgressEvent] = []
    result = roar_lite(
        build_model=build,
        x_train=x[:400],
        y_train=y[:400],
        attributions_train=maps[:400],
        x_test=x[400:],
        y_test=y[400:],
        attributions_test=maps[400:],
        fractions=(0.1, 0.3),
        epochs=15,
        lr=5e-3,
        progress=events.append,
    )
    assert result.fractions.tolist() == [0.1, 0.3]
    assert (result.accuracy < result.random_accuracy - 0.1).all() and result.gap > 0.1
    assert [e.done for e in events] == [1, 2, 3, 4] and events[0].stage == "roar"


@pytest.mark.slow
def test_plot_writes_a_png(tmp_path: Path, canvas_model: nn.Module, images: torch.Tensor) -> None:
    pytest.importorskip("matplotlib")
    curves = deletion_curve(model=canvas_model, x=images, attributions=images, n_steps=4)
    path = plot_explanations(
        x=images, attributions=images, curves=curves, path=tmp_path / "maps.png", titles=list("abc")
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.isfinite(curves.auc).all()

"""Explanation-quality metrics on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.explain import InputXGradient, Saliency
from trustlab.explain.metrics import (
    attribution_iou,
    deletion_curve,
    infidelity,
    insertion_curve,
    max_sensitivity,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from trustlab.explain.metrics._inputs import MSG_EMPTY_MASK


def _masks() -> np.ndarray:
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[:, :2, :2] = True
    return masks


def test_localisation_metrics_on_hand_made_maps() -> None:
    maps = np.zeros((2, 4, 4))
    maps[0, :2, :2] = [[4.0, 3.0], [2.0, 1.0]]  # all relevance on the object
    maps[1, 3, 3], maps[1, 0, 0] = 5.0, 1.0  # the peak off the object
    maps[1, 2, 2] = -7.0  # negative relevance is left out of the mass
    masks = _masks()
    assert pointing_game(attributions=maps, masks=masks).tolist() == [1.0, 0.0]
    assert relevance_mass_accuracy(attributions=maps, masks=masks).tolist() == [1.0, 1 / 6]
    assert relevance_rank_accuracy(attributions=maps, masks=masks).tolist() == [1.0, 0.5]
    assert attribution_iou(attributions=maps, masks=masks).tolist() == [1.0, 1 / 3]
    # Within two pixels of the object, the second peak counts as a hit.
    assert pointing_game(attributions=maps, masks=masks, tolerance=2).tolist() == [1.0, 1.0]


def test_localisation_channels_and_edge_cases() -> None:
    masks = _masks()
    constant = np.ones((2, 3, 4, 4))  # (n, C, H, W): summed over channels
    assert pointing_game(attributions=constant, masks=masks).tolist() == [0.0, 0.0]
    assert relevance_mass_accuracy(attributions=constant, masks=masks).tolist() == [0.25, 0.25]
    negative = -np.ones((2, 4, 4))
    assert relevance_mass_accuracy(attributions=negative, masks=masks).tolist() == [0.0, 0.0]
    with pytest.raises(DataError, match="one \\(H, W\\) mask per map"):
        pointing_game(attributions=constant, masks=masks[:, :3])
    empty = masks.copy()
    empty[1] = False
    with pytest.raises(DataError) as info:
        relevance_mass_accuracy(attributions=constant, masks=empty)
    assert str(info.value) == MSG_EMPTY_MASK.format(index=1)
    with pytest.raises(DataError, match="NaN"):
        pointing_game(attributions=np.full((2, 4, 4), np.nan), masks=masks)


def test_random_maps_score_the_masks_share_on_average() -> None:
    rng = np.random.default_rng(0)
    masks = np.zeros((400, 10, 10), dtype=bool)
    masks[:, 2:7, 3:8] = True  # 25% of the image
    maps = rng.random((400, 10, 10))
    assert relevance_mass_accuracy(attributions=maps, masks=masks).mean() == pytest.approx(
        0.25, abs=0.01
    )
    assert pointing_game(attributions=maps, masks=masks).mean() == pytest.approx(0.25, abs=0.06)


class PixelSum(nn.Module):
    """Logits (sum of the first half of the pixels, 0): deleting those pixels matters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        score = flat[:, : flat.shape[1] // 2].sum(dim=1)
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def _naive_deletion(
    model: nn.Module, x: torch.Tensor, maps: torch.Tensor, n_steps: int
) -> np.ndarray:
    """The per-example, per-step loop of Petsiuk et al.'s reference code."""
    n_pixels = x.shape[2] * x.shape[3]
    curves = np.zeros((len(x), n_steps + 1))
    for i in range(len(x)):
        order = torch.argsort(-maps[i].flatten(), stable=True)
        for step in range(n_steps + 1):
            count = round(step * n_pixels / n_steps)
            image = x[i].clone().reshape(x.shape[1], -1)
            image[:, order[:count]] = 0.0
            with torch.no_grad():
                logits = model(image.reshape(1, *x.shape[1:]))
            curves[i, step] = float(torch.softmax(logits.double(), dim=1)[0, 0])
    return curves


def test_deletion_is_batched_and_equals_the_naive_loop() -> None:
    model = PixelSum()
    x = torch.rand(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    maps = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(1))
    curves = deletion_curve(
        model=model, x=x, attributions=maps, target=[0, 0, 0], n_steps=8, batch_size=5
    )
    expected = _naive_deletion(model, x, maps, 8)
    np.testing.assert_allclose(curves.scores, expected, rtol=1e-6, atol=1e-9)
    assert curves.fractions.tolist() == [k / 8 for k in range(9)]
    np.testing.assert_allclose(curves.auc, np.trapezoid(expected, curves.fractions, axis=1))


def test_a_faithful_map_deletes_faster_and_inserts_faster() -> None:
    model = PixelSum()
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(2)) + 0.5
    # The pixels the model reads are the first half; the right map says so.
    right = torch.zeros(4, 6, 6)
    right[:, :3, :] = 1.0
    wrong = 1.0 - right
    target = [0] * 4
    faithful = deletion_curve(model=model, x=x, attributions=right, target=target, n_steps=12)
    unfaithful = deletion_curve(model=model, x=x, attributions=wrong, target=target, n_steps=12)
    assert (faithful.auc < unfaithful.auc).all()
    inserted = insertion_curve(
        model=model, x=x, attributions=right, target=target, n_steps=12, baseline=0.0
    )
    late = insertion_curve(
        model=model, x=x, attributions=wrong, target=target, n_steps=12, baseline=0.0
    )
    assert (inserted.auc > late.auc).all()
    assert faithful.kind == "deletion" and inserted.kind == "insertion"


def test_curve_arguments_are_checked(canvas_model: nn.Module, images: torch.Tensor) -> None:
    with pytest.raises(DataError, match="one map per input"):
        deletion_curve(model=canvas_model, x=images, attributions=torch.ones(3, 5, 5))
    with pytest.raises(ConfigurationError, match="'baseline' parameter of insertion_curve"):
        insertion_curve(model=canvas_model, x=images, attributions=images, baseline="noise")
    with pytest.raises(DataError, match="images of shape"):
        deletion_curve(model=nn.Linear(4, 2), x=torch.ones(2, 4), attributions=torch.ones(2, 4))
    default = insertion_curve(model=canvas_model, x=images, attributions=images, n_steps=3)
    assert default.scores.shape == (3, 4) and np.isfinite(default.auc).all()


def test_infidelity_is_zero_for_a_linear_models_gradient(linear: nn.Module) -> None:
    x = torch.rand(8, 6)
    target = torch.full((8,), 1)
    exact = Saliency(abs=False).attribute(model=linear, x=x, target=target).values
    scores = infidelity(model=linear, x=x, attributions=exact, target=target, normalize=False)
    assert scores.shape == (8,) and scores.max() < 1e-10
    noisy = exact + torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    worse = infidelity(model=linear, x=x, attributions=noisy, target=target, normalize=False)
    assert (worse > 1e-4).all()


def test_max_sensitivity_of_a_linear_models_gradient_is_zero(linear: nn.Module) -> None:
    x = torch.rand(5, 6)
    stable = max_sensitivity(model=linear, x=x, explainer=Saliency(abs=False), target=[2] * 5)
    assert np.allclose(stable, 0.0)
    varying = max_sensitivity(model=linear, x=x, explainer=InputXGradient(), target=[2] * 5)
    assert (varying > 0).all()

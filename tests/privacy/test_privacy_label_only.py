"""Tests of the label-only attack of Choquette-Choo et al."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trustlab.privacy import LabelOnlyAttack


def _sign_model() -> nn.Module:
    """Predicts class 1 iff x[:, 0] > 0."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        model.bias.zero_()
    return model


def test_score_is_the_fraction_of_queries_labelled_correctly() -> None:
    x = torch.tensor([[5.0, 0.0], [0.01, 0.0], [-5.0, 0.0]])
    y = torch.tensor([1, 1, 1])
    attack = LabelOnlyAttack(noise=1.0, n_queries=200, seed=3)
    scores = attack.infer(model=_sign_model(), x=x, y=y)
    queries = attack.queries(x)
    assert queries.shape == (201, 3, 2)
    expected = (queries[..., 0] > 0).double().mean(dim=0).numpy()
    np.testing.assert_allclose(scores, expected)
    assert scores[0] == 1.0 and scores[2] == 0.0
    assert 0.35 < scores[1] < 0.65


def test_without_noise_it_is_the_gap_attack() -> None:
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    scores = LabelOnlyAttack(noise=0.0).infer(model=_sign_model(), x=x, y=torch.tensor([1, 1]))
    np.testing.assert_array_equal(scores, [1.0, 0.0])


def test_uses_only_the_predicted_label() -> None:
    logits = torch.tensor([[[0.0, 9.0], [3.0, 1.0]], [[0.0, 0.1], [1.0, 2.0]]])
    scores = LabelOnlyAttack().infer_from_logits(logits=logits, y=torch.tensor([1, 0]))
    np.testing.assert_array_equal(scores, [1.0, 0.5])


def test_augmentations_for_images() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    attack = LabelOnlyAttack(augmentations=["hflip"])
    x = torch.rand(4, 1, 8, 8)
    assert attack.queries(x).shape == (2, 4, 1, 8, 8)
    scores = attack.infer(model=model, x=x, y=torch.zeros(4, dtype=torch.long))
    assert set(np.unique(scores)) <= {0.0, 0.5, 1.0}


def test_a_seed_fixes_the_noise() -> None:
    x = torch.randn(6, 2)
    first = LabelOnlyAttack(seed=1).queries(x)
    torch.testing.assert_close(first, LabelOnlyAttack(seed=1).queries(x))
    assert not torch.equal(first, LabelOnlyAttack(seed=2).queries(x))

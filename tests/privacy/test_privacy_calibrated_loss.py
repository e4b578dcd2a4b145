"""Tests of the difficulty-calibrated loss attack."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from privacy_hand import binary_logits, hand_reference
from privacy_population import Population

from trustlab.core.metrics import auc
from trustlab.privacy import CalibratedLossAttack, LossThresholdAttack


def test_score_is_out_reference_loss_minus_target_loss() -> None:
    membership = [[1, 0], [0, 1], [0, 0]]
    reference = np.array([[3.0, 1.0], [0.0, 2.0], [1.0, -1.0]])
    target = np.array([2.0, 0.5])
    y = torch.tensor([1, 1])
    attack = CalibratedLossAttack(reference=hand_reference(membership))
    scores = attack.infer_from_logits(
        logits=binary_logits(target),
        y=y,
        reference_logits=binary_logits(reference),
        candidate_index=[0, 1],
    )

    def loss(c: np.ndarray) -> np.ndarray:
        return F.cross_entropy(
            binary_logits(c), torch.ones(len(c), dtype=torch.long), reduction="none"
        ).numpy()

    expected = [
        loss(reference[[1, 2], 0]).mean() - loss(target[:1])[0],
        loss(reference[[0, 2], 1]).mean() - loss(target[1:])[0],
    ]
    np.testing.assert_allclose(scores, expected, rtol=1e-12)


@pytest.mark.slow
def test_calibration_beats_the_plain_loss(population: Population) -> None:
    index = np.arange(len(population.y))
    calibrated = CalibratedLossAttack(reference=population.reference).infer(
        model=population.target, x=population.x, y=population.y, candidate_index=index
    )
    plain = LossThresholdAttack().infer(model=population.target, x=population.x, y=population.y)
    assert (
        auc(y_true=population.member, scores=calibrated)
        >= auc(y_true=population.member, scores=plain) - 0.02
    )

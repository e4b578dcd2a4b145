"""Fidelity metrics against hand-computed cases, on outputs and on model pairs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from extraction_helpers import DigitsSplit, make_mlp
from torch import nn

from trustlab.core.errors import DataError
from trustlab.extraction.metrics import (
    MSG_NEEDS_X,
    embedding_l2,
    kl_divergence,
    l1_distance,
    label_agreement,
    transfer_rate,
)

P = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7]])
Q = torch.tensor([[0.25, 0.75, 0.0], [0.2, 0.2, 0.6]])


def test_label_agreement_by_hand() -> None:
    assert (
        label_agreement(victim=torch.tensor([0, 1, 2, 2]), copy=torch.tensor([0, 1, 1, 2])) == 0.75
    )
    # Scores are reduced to their arg-max; labels and scores can be mixed.
    assert label_agreement(victim=P, copy=torch.tensor([0, 2])) == 1.0
    assert label_agreement(victim=Q, copy=torch.tensor([0, 2])) == 0.5


def test_kl_and_l1_by_hand() -> None:
    kl_first = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # 0 log 0 = 0
    kl_second = 0.1 * math.log(0.1 / 0.2) + 0.7 * math.log(0.7 / 0.6)
    assert kl_divergence(victim=P, copy=Q) == pytest.approx((kl_first + kl_second) / 2)
    assert kl_divergence(victim=P, copy=P) == pytest.approx(0.0, abs=1e-12)
    assert l1_distance(victim=P, copy=Q) == pytest.approx((0.5 + 0.2) / 2)


def test_embedding_l2_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    b = torch.tensor([[3.0, 4.0], [1.0, 1.0], [0.0, 0.0]])
    assert embedding_l2(victim=a, copy=b) == pytest.approx((5.0 + 0.0 + 2.0) / 3)


def test_transfer_rate_by_hand() -> None:
    y = torch.tensor([0, 0, 1, 1, 2])
    victim_labels = torch.tensor([1, 0, 0, 1, 0])  # fooled on 0, 2, 4
    copy_labels = torch.tensor([1, 1, 0, 1, 2])  # fooled on 0, 1, 2
    x_adv = torch.zeros(5, 3)
    assert transfer_rate(victim=victim_labels, x_adv=x_adv, y=y) == pytest.approx(3 / 5)
    both = transfer_rate(victim=victim_labels, x_adv=x_adv, y=y, copy=copy_labels)
    assert both == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="None of the 5 adversarial examples fools the copy"):
        transfer_rate(victim=victim_labels, x_adv=x_adv, y=y, copy=y)


def test_model_pairs_match_precomputed_outputs(victim: nn.Module, digits: DigitsSplit) -> None:
    copy = make_mlp(seed=9)
    x = digits.x_test[:100]
    with torch.no_grad():
        p, q = F.softmax(victim(x), dim=1), F.softmax(copy(x), dim=1)
        e_v, e_c = victim(x), copy(x)
    assert label_agreement(victim=victim, copy=copy, x=x) == label_agreement(victim=p, copy=q)
    assert kl_divergence(victim=victim, copy=copy, x=x) == pytest.approx(
        kl_divergence(victim=p, copy=q), rel=1e-5
    )
    assert kl_divergence(victim=victim, copy=victim, x=x) == pytest.approx(0.0, abs=1e-9)
    assert l1_distance(victim=victim, copy=copy, x=x) == pytest.approx(
        l1_distance(victim=p, copy=q), rel=1e-5
    )
    assert embedding_l2(victim=victim, copy=copy, x=x) == pytest.approx(
        embedding_l2(victim=e_v, copy=e_c), rel=1e-5
    )
    assert transfer_rate(victim=victim, x_adv=x, y=digits.y_test[:100]) == pytest.approx(
        float((p.argmax(1) != digits.y_test[:100]).float().mean())
    )


def test_bad_inputs_raise_clear_errors(victim: nn.Module) -> None:
    with pytest.raises(DataError) as error:
        label_agreement(victim=victim, copy=P)
    assert str(error.value) == MSG_NEEDS_X.format(name="victim")
    with pytest.raises(DataError, match="probability vectors"):
        kl_divergence(victim=P * 2, copy=Q)
    with pytest.raises(DataError, match="NaN"):
        l1_distance(victim=torch.tensor([[float("nan"), 1.0]]), copy=torch.tensor([[0.0, 1.0]]))
    with pytest.raises(DataError, match="same number of examples"):
        embedding_l2(victim=torch.zeros(3, 2), copy=torch.zeros(2, 2))
    with pytest.raises(DataError, match="same number of outputs"):
        l1_distance(victim=P, copy=torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(DataError, match="embeddings of shape"):
        embedding_l2(victim=torch.zeros(3), copy=torch.zeros(3))

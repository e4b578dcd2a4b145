"""Fidelity metrics against hand-computed cases, and the deprecated model arguments."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from extraction_helpers import DigitsSplit, make_mlp, outputs
from torch import nn

from trustlab.core.errors import DataError
from trustlab.extraction.metrics import (
    MSG_DEPRECATED,
    MSG_MISSING,
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
        label_agreement(y_true=torch.tensor([0, 1, 2, 2]), y_pred=torch.tensor([0, 1, 1, 2]))
        == 0.75
    )
    # Scores are reduced to their arg-max; labels and scores can be mixed.
    assert label_agreement(y_true=P, y_pred=torch.tensor([0, 2])) == 1.0
    assert label_agreement(y_true=Q, y_pred=torch.tensor([0, 2])) == 0.5


def test_kl_and_l1_by_hand() -> None:
    kl_first = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # 0 log 0 = 0
    kl_second = 0.1 * math.log(0.1 / 0.2) + 0.7 * math.log(0.7 / 0.6)
    assert kl_divergence(reference=P, candidate=Q) == pytest.approx((kl_first + kl_second) / 2)
    assert kl_divergence(reference=P, candidate=P) == pytest.approx(0.0, abs=1e-12)
    assert l1_distance(reference=P, candidate=Q) == pytest.approx((0.5 + 0.2) / 2)


def test_embedding_l2_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    b = torch.tensor([[3.0, 4.0], [1.0, 1.0], [0.0, 0.0]])
    assert embedding_l2(reference=a, candidate=b) == pytest.approx((5.0 + 0.0 + 2.0) / 3)


def test_transfer_rate_by_hand() -> None:
    y = torch.tensor([0, 0, 1, 1, 2])
    victim_labels = torch.tensor([1, 0, 0, 1, 0])  # fooled on 0, 2, 4
    copy_labels = torch.tensor([1, 1, 0, 1, 2])  # fooled on 0, 1, 2
    assert transfer_rate(y_true=y, y_pred=victim_labels) == pytest.approx(3 / 5)
    both = transfer_rate(y_true=y, y_pred=victim_labels, y_pred_copy=copy_labels)
    assert both == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="None of the 5 adversarial examples fools the copy"):
        transfer_rate(y_true=y, y_pred=victim_labels, y_pred_copy=y)


def test_deprecated_model_arguments_warn_and_agree(victim: nn.Module, digits: DigitsSplit) -> None:
    copy = make_mlp(seed=9)
    x = digits.x_test[:100]
    v, c = outputs(victim, x), outputs(copy, x)
    p, q = F.softmax(v, dim=1), F.softmax(c, dim=1)
    with pytest.warns(FutureWarning) as caught:
        old_agreement = label_agreement(victim=victim, copy=copy, x=x)
        old_kl = kl_divergence(victim=victim, copy=copy, x=x)
        old_l1 = l1_distance(victim=victim, copy=copy, x=x, batch_size=7)
        old_l2 = embedding_l2(victim=victim, copy=c, x=x)
        old_transfer = transfer_rate(victim=victim, x_adv=x, y=digits.y_test[:100])
    assert str(caught[0].message) == MSG_DEPRECATED.format(
        owner="label_agreement", old="victim=, copy=", new="y_true=, y_pred="
    )
    assert all(warning.filename == __file__ for warning in caught)
    assert old_agreement == label_agreement(y_true=v, y_pred=c)
    assert old_kl == pytest.approx(kl_divergence(reference=p, candidate=q), rel=1e-5)
    assert old_l1 == pytest.approx(l1_distance(reference=p, candidate=q), rel=1e-5)
    assert old_l2 == pytest.approx(embedding_l2(reference=v, candidate=c), rel=1e-5)
    assert old_transfer == pytest.approx(float((p.argmax(1) != digits.y_test[:100]).float().mean()))
    with pytest.warns(FutureWarning), pytest.raises(DataError) as error:
        label_agreement(victim=victim, copy=P)
    assert str(error.value) == MSG_NEEDS_X.format(name="victim")


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(TypeError) as missing:
        label_agreement(y_true=P)
    assert str(missing.value) == MSG_MISSING.format(owner="label_agreement", name="y_pred")
    with pytest.raises(TypeError, match="or the deprecated victim=, copy=, not both"):
        l1_distance(reference=P, copy=Q)
    with pytest.raises(DataError, match="reference must hold probability vectors"):
        kl_divergence(reference=P * 2, candidate=Q)
    with pytest.raises(DataError, match="NaN"):
        l1_distance(
            reference=torch.tensor([[float("nan"), 1.0]]), candidate=torch.tensor([[0.0, 1.0]])
        )
    with pytest.raises(DataError, match="reference and candidate must have the same number"):
        embedding_l2(reference=torch.zeros(3, 2), candidate=torch.zeros(2, 2))
    with pytest.raises(DataError, match="same number of outputs"):
        l1_distance(reference=P, candidate=torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(DataError, match="candidate must be embeddings of shape"):
        embedding_l2(reference=torch.zeros(3, 2), candidate=torch.zeros(3))

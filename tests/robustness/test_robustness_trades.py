"""TRADES (Zhang et al., 2019): the loss and the robustness it buys."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from robustness_training_checks import LINF_EPS, assert_more_robust, trainable_copy
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.robustness.training import TRADES
from trustlab.robustness.training.trades import _kl


def test_kl_term_matches_the_definition() -> None:
    torch.manual_seed(0)
    clean, adv = torch.randn(5, 4), torch.randn(5, 4)
    p, q = clean.softmax(1), adv.softmax(1)
    by_hand = (p * (p.log() - q.log())).sum()
    assert torch.allclose(_kl(adv, clean), by_hand, atol=1e-6)
    assert float(_kl(clean, clean)) == pytest.approx(0.0, abs=1e-6)


def test_beta_zero_is_plain_cross_entropy_training(
    digits_cnn: nn.Module, digits_split: Any
) -> None:
    x, y = digits_split.x_train[:64], digits_split.y_train[:64]
    model = trainable_copy(digits_cnn)
    trainer = TRADES(eps=LINF_EPS, beta=0.0, steps=2, epochs=1, batch_size=64)
    with torch.no_grad():
        expected = float(F.cross_entropy(model(x), y))
    report = trainer.fit(model=model, x=x, y=y).report_
    assert report.losses[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_trades_raises_pgd_robust_accuracy(digits_cnn: nn.Module, digits_split: Any) -> None:
    model = trainable_copy(digits_cnn)
    TRADES(eps=LINF_EPS, steps=5, epochs=2, lr=2e-3).fit(
        model=model, x=digits_split.x_train, y=digits_split.y_train
    )
    assert_more_robust(model, digits_cnn, digits_split)


def test_bad_beta_is_named() -> None:
    with pytest.raises(ConfigurationError, match="The 'beta' parameter of TRADES"):
        TRADES(eps=0.1, beta=-1.0)

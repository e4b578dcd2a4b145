"""TRADES (Zhang et al., 2019): the loss and the robustness it buys."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.robustness.pgd import PGD
from trustlab.robustness.training import TRADES
from trustlab.robustness.training.trades import _kl

#: The Linf radius of the tests, at which PGD breaks much of an undefended digits CNN.
LINF_EPS = 0.1


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
    model = copy.deepcopy(digits_cnn).requires_grad_(True)
    trainer = TRADES(eps=LINF_EPS, beta=0.0, steps=2, epochs=1, batch_size=64)
    with torch.no_grad():
        expected = float(F.cross_entropy(model(x), y))
    report = trainer.fit(model=model, x=x, y=y)
    assert report.losses[0] == pytest.approx(expected, rel=1e-5)


def test_trades_raises_pgd_robust_accuracy(digits_cnn: nn.Module, digits_split: Any) -> None:
    model = copy.deepcopy(digits_cnn).requires_grad_(True)
    TRADES(eps=LINF_EPS, steps=5, epochs=2, lr=2e-3).fit(
        model=model, x=digits_split.x_train, y=digits_split.y_train
    )
    x, y = digits_split.x_test[:200], digits_split.y_test[:200]
    attack = PGD(eps=LINF_EPS, steps=10)
    before = attack.generate(model=digits_cnn, x=x, y=y).robust_accuracy
    after = attack.generate(model=model, x=x, y=y)
    assert after.robust_accuracy > before + 0.1, (before, after.robust_accuracy)
    assert after.clean_accuracy > 0.85


def test_bad_beta_is_named() -> None:
    with pytest.raises(ConfigurationError, match="The 'beta' parameter of TRADES"):
        TRADES(eps=0.1, beta=-1.0)

"""Helpers shared by the adversarial-training tests (PGD-AT, TRADES, fast AT)."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from trustlab.robustness.pgd import PGD

#: The Linf radius of the tests, at which PGD breaks much of an undefended digits CNN.
LINF_EPS = 0.1
#: Test examples the robustness gain is measured on.
N_EVAL = 200


def trainable_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters require gradients (the shared CNN is left alone)."""
    return copy.deepcopy(model).requires_grad_(True)


def assert_more_robust(trained: nn.Module, undefended: nn.Module, split: Any) -> None:
    """PGD robust accuracy at ``LINF_EPS`` on the first ``N_EVAL`` test examples rises by more
    than 0.1 from ``undefended`` to ``trained``, whose clean accuracy stays above 0.85."""
    x, y = split.x_test[:N_EVAL], split.y_test[:N_EVAL]
    attack = PGD(eps=LINF_EPS, steps=10)
    before = attack.generate(model=undefended, x=x, y=y).robust_accuracy
    after = attack.generate(model=trained, x=x, y=y)
    assert after.robust_accuracy > before + 0.1, (before, after.robust_accuracy)
    assert after.clean_accuracy > 0.85

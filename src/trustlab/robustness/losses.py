"""Per-example losses the gradient attacks maximise (margin, DLR, targeted DLR)."""

from __future__ import annotations

import torch

from trustlab.core.errors import DataError

MSG_FEW_CLASSES = (
    "{owner} needs a model with at least {needed} classes for its {loss} loss; the model has "
    "{n_classes}. Use a cross-entropy attack (e.g. 'apgd-ce' or 'pgd') instead."
)


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per example: the largest other logit minus the true class's logit (> 0: misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.amax(dim=1) - true


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Difference of Logits Ratio loss of Croce & Hein (2020), per example, shape (n,).

    ``-(z_y - max_{i != y} z_i) / (z_(1) - z_(3))`` where ``z_(k)`` is the k-th largest logit.
    It is invariant to shifting and rescaling the logits. Needs at least 3 classes.
    """
    ranked, order = logits.sort(dim=1, descending=True)
    true = logits.gather(1, y[:, None]).squeeze(1)
    top_is_true = order[:, 0] == y
    best_other = torch.where(top_is_true, ranked[:, 1], ranked[:, 0])
    return -(true - best_other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)


def targeted_dlr_loss(logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The targeted DLR loss of Croce & Hein (2020), per example, shape (n,).

    ``-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)``; needs at least 4 classes.
    """
    ranked, _ = logits.sort(dim=1, descending=True)
    true = logits.gather(1, y[:, None]).squeeze(1)
    target = logits.gather(1, targets[:, None]).squeeze(1)
    return -(true - target) / (ranked[:, 0] - 0.5 * (ranked[:, 2] + ranked[:, 3]) + 1e-12)


def check_n_classes(n_classes: int, *, needed: int, owner: str, loss: str) -> None:
    """DataError unless the model has at least ``needed`` classes."""
    if n_classes < needed:
        raise DataError(
            MSG_FEW_CLASSES.format(owner=owner, needed=needed, loss=loss, n_classes=n_classes)
        )

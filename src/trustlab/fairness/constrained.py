"""Training under a fairness constraint with a proxy-Lagrangian (Cotter et al., 2019)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import model_device_and_dtype
from trustlab.core.params import Constraint, Real, validate_params
from trustlab.core.training import Step
from trustlab.fairness._training import (
    TrainingData,
    logits_and_margin,
    snapshot,
    train_mitigation,
)
from trustlab.fairness.base import MITIGATIONS, ModelMitigation

__all__ = ["FairnessConstrainedClassifier"]

#: For each criterion, the label values that condition the compared rates (None: all rows).
_CONDITIONS: dict[str, tuple[int | None, ...]] = {
    "demographic_parity": (None,),
    "equalized_odds": (0, 1),
    "equal_opportunity": (1,),
}


def _pairs(n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    first, second = zip(
        *[(g, h) for g in range(n_groups) for h in range(n_groups) if g != h], strict=True
    )
    return torch.tensor(first), torch.tensor(second)


@MITIGATIONS.register("constrained")
class FairnessConstrainedClassifier(ModelMitigation):
    """Train a PyTorch classifier so that a fairness gap stays within a bound.

    In-processing. The constrained problem ``min_theta CE(theta)`` subject to
    ``rate_{c,g}(theta) - rate_{c,h}(theta) <= bound`` for every condition ``c`` and every
    ordered pair of groups ``(g, h)`` is solved as a two-player game on the Lagrangian
    ``CE + sum_k lambda_k (violation_k)``, ``lambda >= 0``:

    * the model (theta-player) takes Adam steps on ``CE + sum_k lambda_k proxy_k``, where the
      rates are relaxed to the mean predicted probability ``sigmoid(logit_1 - logit_0)``
      within each group of the batch (the rate of group ``g`` on the rows of condition ``c``);
    * the multipliers (lambda-player) take projected gradient-ascent steps
      ``lambda_k <- max(0, lambda_k + multiplier_lr * (proxy_k - bound))`` on the same relaxed
      rate differences of the batch.

    Cotter et al. (2019) drive the multipliers with the hard (arg-max) rates instead (their
    proxy-Lagrangian); on mini-batches those are too noisy for small groups, so the hard
    constraint is enforced through the iterate selection below instead.

    Conditions: demographic parity compares selection rates on all rows; equal opportunity
    compares them on rows with ``y = 1`` (TPR); equalized odds on rows with ``y = 1`` and on
    rows with ``y = 0`` (TPR and FPR). ``bound`` therefore bounds exactly the between-groups
    difference that :func:`~trustlab.fairness.fairness_gap` reports.

    Iterate selection: the game's iterates oscillate (most for equalized odds, whose rates
    condition on small cells such as positives of a minority group); at the end of every epoch
    the model is evaluated on the whole training set and the final model is the epoch with the
    highest training accuracy among those whose training gap is within ``bound`` (the one with
    the smallest gap if none is). Cotter et al. return a randomised mixture of iterates
    instead; a single deterministic model is easier to ship and score. The sensitive attribute
    is needed at training time only.

    Parameters
    ----------
    criterion : {"demographic_parity", "equalized_odds", "equal_opportunity"}
        The constrained criterion.
    bound : float, default 0.02
        The largest allowed between-groups difference, >= 0.
    epochs : int, default 20
        Passes over the training data.
    lr : float, default 1e-3
        Adam learning rate of the model.
    multiplier_lr : float, default 0.05
        Step size of the multipliers.
    batch_size : int, default 512
        Examples per step; large enough that every group appears in a batch.
    weight_decay : float, default 0.0
        L2 penalty.
    seed : int, default 0
        Seed of shuffling and dropout; the caller's random state is restored.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained model, loaded with the selected epoch's weights.
    multipliers_ : ndarray of float64
        The final Lagrange multipliers, shape (n_conditions, n_groups * (n_groups - 1)).
    epoch_ : int
        The selected epoch (from 1).
    history_ : list of dict
        Per epoch: ``loss``, ``accuracy`` and ``gap`` on the training data.
    gap_, accuracy_ : float
        Gap and accuracy of the selected model on the training data.

    References
    ----------
    .. [1] A. Cotter, H. Jiang and K. Sridharan, "Two-Player Games for Efficient Non-Convex
       Constrained Optimization", ALT 2019.
    .. [2] A. Agarwal, A. Beygelzimer, M. Dudík, J. Langford and H. Wallach, "A Reductions
       Approach to Fair Classification", ICML 2018.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(400, 3)
    >>> group = (x[:, 0] > 0).long()
    >>> y = ((x[:, 1] + group) > 0.5).long()
    >>> clf = FairnessConstrainedClassifier(criterion="demographic_parity", bound=0.05, epochs=3)
    >>> clf = clf.fit(model=torch.nn.Linear(3, 2), x=x, y=y, sensitive_features=group)
    >>> clf.predict(x=x).shape
    (400,)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "bound": Real(low=0),
        "multiplier_lr": Real(low=0),
    }

    def __init__(
        self,
        *,
        criterion: str = "demographic_parity",
        bound: float = 0.02,
        epochs: int = 20,
        lr: float = 1e-3,
        multiplier_lr: float = 0.05,
        batch_size: int = 512,
        weight_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.criterion = criterion
        self.bound = bound
        self.epochs = epochs
        self.lr = lr
        self.multiplier_lr = multiplier_lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        validate_params(self)

    def _train(self, model: nn.Module, data: TrainingData) -> None:
        owner = type(self).__name__
        criterion, bound, multiplier_lr = self.criterion, self.bound, self.multiplier_lr
        device, _ = model_device_and_dtype(model)
        conditions = _CONDITIONS[criterion]
        n_groups = data.groups.n_groups
        first, second = (pairs.to(device) for pairs in _pairs(n_groups))
        multipliers = torch.zeros(len(conditions), len(first), dtype=torch.float64, device=device)
        # The epoch's summed cross-entropy (the loop records the Lagrangian's).
        cross_entropy = torch.zeros((), dtype=torch.float64, device=device)
        history: list[dict[str, float]] = []
        best: tuple[bool, float, float, int, dict[str, torch.Tensor]] | None = None

        def loss(step: Step) -> torch.Tensor:
            nonlocal cross_entropy
            logits, margin = logits_and_margin(step, owner=owner)
            labels, groups = step.batch["y"], step.batch["group"]
            ce = F.cross_entropy(logits, labels)
            cross_entropy += ce.detach().double() * len(labels)
            soft = torch.sigmoid(margin)
            penalty = soft.new_zeros(())
            for c, label in enumerate(conditions):
                rows = (
                    torch.ones_like(labels, dtype=torch.bool) if label is None else labels == label
                )
                soft_diff, present = _rate_differences(soft, groups, rows, n_groups, first, second)
                weight = multipliers[c].to(soft.dtype) * present
                penalty = penalty + (weight * soft_diff).sum()
                change = (soft_diff.detach().double() - bound) * present
                multipliers[c] = (multipliers[c] + multiplier_lr * change).clamp_min(0.0)
            return ce + penalty

        def after_epoch(epoch: int, _: float) -> None:
            nonlocal best, cross_entropy
            mean_loss = float(cross_entropy) / len(data)
            cross_entropy = torch.zeros_like(cross_entropy)
            accuracy, gap = self._measure(model, data)
            history.append({"loss": mean_loss, "accuracy": accuracy, "gap": gap})
            feasible = gap <= bound
            key = (feasible, accuracy if feasible else -gap)
            if best is None or key > (best[0], best[1]):
                best = (feasible, key[1], gap, epoch, snapshot(model))

        train_mitigation(self, model, data, loss=loss, after_epoch=after_epoch)
        assert best is not None
        model.load_state_dict(best[4])
        self.multipliers_ = multipliers.cpu().numpy()
        self.epoch_ = best[3]
        self.history_ = history


def _rate_differences(
    values: torch.Tensor,
    groups: torch.Tensor,
    rows: torch.Tensor,
    n_groups: int,
    first: torch.Tensor,
    second: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``values`` per group over ``rows``, differenced over the ordered group pairs.

    Returns the differences and a 0/1 mask of the pairs whose two groups both have rows.
    """
    mask = rows.to(values.dtype)
    sums = torch.zeros(n_groups, dtype=values.dtype, device=values.device)
    counts = torch.zeros(n_groups, dtype=values.dtype, device=values.device)
    sums = sums.index_add(0, groups, values * mask)
    counts = counts.index_add(0, groups, mask)
    rates = sums / counts.clamp_min(1.0)
    has = (counts > 0).to(values.dtype)
    first = first.to(values.device)
    second = second.to(values.device)
    return rates[first] - rates[second], has[first] * has[second]

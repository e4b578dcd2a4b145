"""Adversarial debiasing (Zhang, Lemoine & Mitchell, 2018): in-processing."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import model_device_and_dtype
from trustlab.core.params import Constraint, Integer, Options, Real, validate_params
from trustlab.core.training import Step
from trustlab.fairness._training import TrainingData, logits_and_margin, train_mitigation
from trustlab.fairness.base import MITIGATIONS, ModelMitigation

__all__ = ["AdversarialDebiasing"]

#: How the adversary's weight in the predictor's update grows with the step ``t`` (from 1).
ALPHA_SCHEDULES = ("constant", "sqrt")


class _Adversary(nn.Module):
    """Predicts the group from ``sigmoid((1 + |c|) * margin)`` (and the label for odds)."""

    def __init__(self, *, n_inputs: int, n_groups: int, hidden: int) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.ones(()))
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, n_groups)]
        else:
            layers.append(nn.Linear(n_inputs, n_groups))
        self.net = nn.Sequential(*layers)

    def forward(self, margin: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        s = torch.sigmoid((1 + self.c.abs()) * margin)
        if y is None:
            features = s[:, None]
        else:
            label = y.to(s.dtype)
            features = torch.stack([s, s * label, s * (1 - label)], dim=1)
        out: torch.Tensor = self.net(features)
        return out


@MITIGATIONS.register("adversarial_debiasing")
class AdversarialDebiasing(ModelMitigation):
    """Adversarial debiasing: train the model so an adversary cannot recover the group.

    In-processing (Zhang, Lemoine & Mitchell, 2018). An adversary predicts the sensitive group
    from the model's output: from ``s = sigmoid((1 + |c|) * (logit_1 - logit_0))`` for
    demographic parity, and from ``[s, s * y, s * (1 - y)]`` for equalized odds (so it can only
    exploit what the output says about the group *given the label*); for equal opportunity it
    sees ``[s, s * y, s * (1 - y)]`` on positive examples only. The adversary is a softmax
    classifier over the groups, so any number of (intersectional) groups works.

    Each step, with ``L_P`` the model's cross-entropy and ``L_A`` the adversary's, the model's
    parameters ``W`` move along

    ``grad_W L_P - proj_{grad_W L_A} grad_W L_P - alpha_t grad_W L_A``,

    which removes the part of the prediction gradient that would help the adversary and then
    pushes against it; the adversary takes an ordinary step on ``L_A``. Both use Adam.

    Criterion: demographic parity, equalized odds or equal opportunity. The gap is not bounded
    explicitly; ``alpha`` trades accuracy for a smaller gap.

    Departures from the paper: the projection is taken on the gradient of all the model's
    parameters as one vector (as in the paper's derivation; AIF360 projects layer by layer);
    the default ``alpha`` schedule is constant (as in AIF360, whose weight is 0.1; the paper's
    ``sqrt`` with a decaying learning rate is ``alpha_schedule="sqrt"``,
    ``alpha_t = alpha * sqrt(t)``), and both players use Adam instead of plain gradient steps.

    Parameters
    ----------
    criterion : {"demographic_parity", "equalized_odds", "equal_opportunity"}
        What the adversary sees, and so which criterion is pursued.
    alpha : float, default 0.3
        Weight of the adversary's gradient in the model's update, >= 0. Too large a weight
        lets the model overshoot (it can flip which group is favoured); tune it per task.
    alpha_schedule : {"constant", "sqrt"}, default "constant"
        ``alpha_t = alpha`` or ``alpha * sqrt(t)`` at step ``t``.
    adversary_hidden : int, default 0
        Width of the adversary's hidden layer; 0 makes it logistic regression as in the paper.
    epochs : int, default 20
        Passes over the training data.
    lr : float, default 1e-3
        Adam learning rate of the model.
    adversary_lr : float, default 5e-2
        Adam learning rate of the adversary.
    batch_size : int, default 256
        Examples per step.
    weight_decay : float, default 0.0
        L2 penalty of the model.
    seed : int, default 0
        Seed of shuffling, of the adversary's initial weights and of dropout; the caller's
        random state is restored.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained model.
    adversary_ : torch.nn.Module
        The trained adversary.
    history_ : list of dict
        Per epoch: mean ``loss`` of the model and ``adversary_loss``.
    gap_, accuracy_ : float
        Gap and accuracy of the trained model on the training data.

    References
    ----------
    .. [1] B. H. Zhang, B. Lemoine and M. Mitchell, "Mitigating Unwanted Biases with Adversarial
       Learning", AIES 2018.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(200, 3)
    >>> group = (x[:, 0] > 0).long()
    >>> y = ((x[:, 1] + group) > 0.5).long()
    >>> debias = AdversarialDebiasing(epochs=2).fit(
    ...     model=torch.nn.Linear(3, 2), x=x, y=y, sensitive_features=group
    ... )
    >>> debias.criterion
    'demographic_parity'
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "alpha": Real(low=0),
        "alpha_schedule": Options(*ALPHA_SCHEDULES),
        "adversary_hidden": Integer(low=0),
        "adversary_lr": Real(low=0, closed="neither"),
    }

    def __init__(
        self,
        *,
        criterion: str = "demographic_parity",
        alpha: float = 0.3,
        alpha_schedule: str = "constant",
        adversary_hidden: int = 0,
        epochs: int = 20,
        lr: float = 1e-3,
        adversary_lr: float = 5e-2,
        batch_size: int = 256,
        weight_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.criterion = criterion
        self.alpha = alpha
        self.alpha_schedule = alpha_schedule
        self.adversary_hidden = adversary_hidden
        self.epochs = epochs
        self.lr = lr
        self.adversary_lr = adversary_lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        validate_params(self)

    def _train(self, model: nn.Module, data: TrainingData) -> None:
        owner = type(self).__name__
        criterion, alpha = self.criterion, self.alpha
        device, dtype = model_device_and_dtype(model)
        params = [p for p in model.parameters() if p.requires_grad]
        uses_label = criterion != "demographic_parity"
        history: list[dict[str, float]] = []
        adversary_total = torch.zeros((), dtype=torch.float64, device=device)
        players: list[tuple[_Adversary, torch.optim.Optimizer]] = []

        def adversary_player() -> tuple[_Adversary, torch.optim.Optimizer]:
            # Built at the first step, inside the run's seeded random state, so that its
            # initial weights follow from ``seed``.
            if not players:
                adversary = _Adversary(
                    n_inputs=3 if uses_label else 1,
                    n_groups=data.groups.n_groups,
                    hidden=self.adversary_hidden,
                ).to(device=device, dtype=dtype)
                players.append(
                    (adversary, torch.optim.Adam(adversary.parameters(), lr=self.adversary_lr))
                )
            return players[0]

        def step(info: Step) -> torch.Tensor:
            nonlocal adversary_total
            adversary, adversary_optimizer = adversary_player()
            t = info.number + 1
            alpha_t = alpha * (math.sqrt(t) if self.alpha_schedule == "sqrt" else 1.0)
            logits, margin = logits_and_margin(info, owner=owner)
            labels, groups = info.batch["y"], info.batch["group"]
            seen = labels if uses_label else None
            rows = labels == 1 if criterion == "equal_opportunity" else None
            loss = F.cross_entropy(logits, labels)
            adversary_loss = self._adversary_loss(adversary, margin, seen, groups, rows)
            grads = torch.autograd.grad(loss, params, retain_graph=True)
            adversary_grads = torch.autograd.grad(adversary_loss, params, allow_unused=True)
            _set_debiased_gradients(params, grads, adversary_grads, alpha_t)
            info.optimizer.step()

            # The adversary's own step, on the model's (now fixed) outputs.
            adversary_optimizer.zero_grad(set_to_none=True)
            own_loss = self._adversary_loss(adversary, margin.detach(), seen, groups, rows)
            own_loss.backward()
            adversary_optimizer.step()
            adversary_total += own_loss.detach().double() * len(labels)
            return loss.detach()

        def after_epoch(_: int, mean_loss: float) -> None:
            nonlocal adversary_total
            adversary_loss = float(adversary_total) / len(data)
            history.append({"loss": mean_loss, "adversary_loss": adversary_loss})
            adversary_total = torch.zeros_like(adversary_total)

        train_mitigation(self, model, data, step=step, after_epoch=after_epoch)
        for param in params:
            param.grad = None
        self.adversary_ = players[0][0]
        self.history_ = history

    @staticmethod
    def _adversary_loss(
        adversary: _Adversary,
        margin: torch.Tensor,
        y: torch.Tensor | None,
        groups: torch.Tensor,
        rows: torch.Tensor | None,
    ) -> torch.Tensor:
        if rows is not None:
            if not bool(rows.any()):
                return margin.sum() * 0.0
            margin, groups = margin[rows], groups[rows]
            y = None if y is None else y[rows]
        return F.cross_entropy(adversary(margin, y), groups)


def _set_debiased_gradients(
    params: list[nn.Parameter],
    grads: tuple[torch.Tensor, ...],
    adversary_grads: tuple[torch.Tensor | None, ...],
    alpha: float,
) -> None:
    """Set ``p.grad = g_P - proj_{g_A} g_P - alpha g_A`` over all parameters as one vector."""
    filled = [
        torch.zeros_like(g) if a is None else a for g, a in zip(grads, adversary_grads, strict=True)
    ]
    flat_p = torch.cat([g.reshape(-1) for g in grads])
    flat_a = torch.cat([a.reshape(-1) for a in filled])
    # A zero adversary gradient leaves the prediction gradient as it is; clamping the norm
    # keeps that case free of a host-device synchronisation.
    norm = flat_a.norm().clamp_min(1e-30)
    coefficient = torch.dot(flat_p, flat_a / norm)
    for param, grad, adv in zip(params, grads, filled, strict=True):
        param.grad = grad - coefficient * adv / norm - alpha * adv

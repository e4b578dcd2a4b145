"""Fast adversarial training: FGSM with a random start (Wong, Rice and Kolter, 2020)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.errors import DataError
from trustlab.core.params import Boolean, Constraint, Optional, Real
from trustlab.core.training import model_mode
from trustlab.robustness._params import AT_LEAST_ONE, POSITIVE, store_params
from trustlab.robustness.norms import Norm
from trustlab.robustness.registry import register_trainer
from trustlab.robustness.training.base import (
    MSG_TOO_FEW,
    AdversarialTrainer,
    GuardCheck,
    TrainingReport,
)

__all__ = ["FastAdversarialTraining"]

#: Wong et al.'s step size for the FGSM step: 1.25 * eps.
ALPHA_FACTOR = 1.25
#: Step size of the guard's PGD, as a fraction of eps (the reference: 2/255 at eps 8/255).
GUARD_STEP_FACTOR = 0.25


@register_trainer
class FastAdversarialTraining(AdversarialTrainer):
    """FGSM adversarial training with a random start and a catastrophic-overfitting guard.

    Wong, Rice and Kolter, "Fast is better than free: Revisiting adversarial training",
    ICLR 2020 (reference code: locuslab/fast_adversarial, ``train_fgsm.py``). For each
    mini-batch, draw ``delta`` uniformly from the Linf ball, take one signed-gradient step of
    size ``alpha`` (default ``1.25 * eps``) on the cross-entropy, project back onto the ball and
    the valid range, and update the weights on the resulting inputs. The whole step runs with
    the model in training mode, as in the reference.

    **Catastrophic overfitting guard.** FGSM training can suddenly lose all robustness to PGD
    while its accuracy against FGSM stays high. With ``guard=True``, ``guard_size`` training
    examples (drawn with ``seed``) are held out of training, and before the first step, every
    ``check_every`` optimiser steps and at the end of the run the model's accuracy on them under PGD
    (``guard_steps`` steps of size ``eps / 4``, one random start, eval mode) and under the
    training attack is recorded in the report. The rule: if the PGD accuracy falls more than
    ``max_drop`` (0.2, the reference's threshold) below the best PGD accuracy seen so far, the
    run stops and the model is rolled back to the checkpoint of that best check (the latest one
    on ties). Otherwise the final weights are kept.

    Departures from the reference: the reference checks PGD accuracy on the first training
    mini-batch after each epoch and compares it with the previous check only; here the batch is
    held out, the interval is configurable (it defaults to one epoch), and the comparison is
    with the best check. The reference's cyclic learning rate and mixed precision are left out
    (pass an optimizer and learning rate of your choice).

    Threat model: ``||x_adv - x||_inf <= eps``, ``x_adv`` inside ``bounds``.

    Parameters
    ----------
    norm : {"Linf"}, default="Linf"
    eps : float
        The radius of the threat model, > 0.
    alpha : float, optional
        The FGSM step size; defaults to ``1.25 * eps``.
    guard : bool, default=True
        Whether to hold out a guard batch and watch for catastrophic overfitting.
    guard_size : int, default=128
        Examples held out for the guard.
    check_every : int, optional
        Optimiser steps between checks; defaults to one epoch.
    guard_steps : int, default=5
        Steps of the guard's PGD (the reference: 5).
    max_drop : float, default=0.2
        The fall in guard PGD accuracy, below its best, that counts as catastrophic
        overfitting.
    epochs, lr, batch_size, optimizer, weight_decay, seed
        As in :func:`trustlab.core.training.fit_classifier`.
    bounds : (float, float), default=(0.0, 1.0)
        The valid input range.

    Shapes
    ------
    ``x``: (n, ...) in ``bounds``; ``y``: (n,); the model maps (b, ...) to logits (b, k).

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> _ = torch.manual_seed(0)
    >>> model = build_model("mlp", arguments={"in_features": 4, "num_classes": 2})
    >>> x, y = torch.rand(64, 4), torch.randint(0, 2, (64,))
    >>> trainer = FastAdversarialTraining(eps=0.1, epochs=2, guard_size=16)
    >>> report = trainer.fit(model=model, x=x, y=y).report_
    >>> len(report.checks), report.overfitting_detected
    (3, False)
    """

    name: ClassVar[str] = "fast-at"
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF,)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "alpha": Optional(POSITIVE),
        "guard": Boolean(),
        "guard_size": AT_LEAST_ONE,
        "check_every": Optional(AT_LEAST_ONE),
        "guard_steps": AT_LEAST_ONE,
        "max_drop": Real(low=0, high=1, closed="right"),
    }

    alpha: float
    guard: bool
    guard_size: int
    check_every: int | None
    guard_steps: int
    max_drop: float

    def __init__(
        self,
        *,
        norm: Norm | str = "Linf",
        eps: float,
        alpha: float | None = None,
        guard: bool = True,
        guard_size: int = 128,
        check_every: int | None = None,
        guard_steps: int = 5,
        max_drop: float = 0.2,
        epochs: int = 10,
        lr: float = 1e-3,
        batch_size: int = 64,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            alpha=alpha,
            guard=guard,
            guard_size=guard_size,
            check_every=check_every,
            guard_steps=guard_steps,
            max_drop=max_drop,
        )
        super().__init__(
            norm=norm,
            eps=eps,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            weight_decay=weight_decay,
            bounds=bounds,
            seed=seed,
        )
        if self.alpha is None:
            self.alpha = ALPHA_FACTOR * self.eps

    # ----------------------------------------------------------------------------------------

    def _prepare(
        self, *, model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device
    ) -> torch.Tensor:
        n = x.shape[0]
        self._guard_x: torch.Tensor | None = None
        self._guard_y: torch.Tensor | None = None
        self._best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        self._every = self.check_every or -(-n // self.batch_size)
        if not self.guard:
            return torch.arange(n)
        if n <= self.guard_size:
            raise DataError(
                MSG_TOO_FEW.format(owner=type(self).__name__, needed=self.guard_size + 1, n=n)
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + 1))
        held, kept = order[: self.guard_size], order[self.guard_size :]
        self._guard_x = x[held].to(device)
        self._guard_y = y[held].to(device)
        self._guard_keys = held
        self._every = self.check_every or -(-len(kept) // self.batch_size)
        return torch.sort(kept).values

    def _loss(
        self,
        *,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        indices: torch.Tensor,
        epoch: int,
    ) -> torch.Tensor:
        x_adv = self._fgsm(model, x, y, indices=indices, step=epoch, alpha=self.alpha)
        return F.cross_entropy(model(x_adv), y)

    def _fgsm(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        indices: torch.Tensor,
        step: int,
        alpha: float,
    ) -> torch.Tensor:
        start = self._ball_start(x, indices=indices, step=step)
        return self._ce_ascent(model, x, y, start=start, step_size=alpha, steps=1)

    def _begin(self, *, model: nn.Module, report: TrainingReport) -> None:
        if self.guard:
            self._guard_check(model, report=report, epoch=0)

    def _after_step(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        report: TrainingReport,
        epoch: int,
        end_of_epoch: bool,
    ) -> bool:
        del optimizer
        if not self.guard:
            return False
        final = end_of_epoch and epoch == self.epochs
        if report.steps % self._every != 0 and not final:
            return False
        return self._guard_check(model, report=report, epoch=epoch)

    def _guard_check(self, model: nn.Module, *, report: TrainingReport, epoch: int) -> bool:
        """Check the model on the guard batch; roll back and return True on a collapse."""
        check = self._check(model, epoch=epoch, step=report.steps)
        report.checks.append(check)
        index = len(report.checks) - 1
        best = self._best
        if best is not None and best[0] - check.pgd_accuracy > self.max_drop:
            model.load_state_dict(best[2])
            report.overfitting_detected = True
            report.restored_check = best[1]
            return True
        if best is None or check.pgd_accuracy >= best[0]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self._best = (check.pgd_accuracy, index, state)
        return False

    def _check(self, model: nn.Module, *, epoch: int, step: int) -> GuardCheck:
        """PGD and training-attack accuracy on the guard batch, in eval mode."""
        assert self._guard_x is not None and self._guard_y is not None
        x, y, keys = self._guard_x, self._guard_y, self._guard_keys
        with model_mode(model, training=False):
            fgsm = self._fgsm(model, x, y, indices=keys, step=-step, alpha=self.alpha)
            pgd = self._ce_ascent(
                model,
                x,
                y,
                start=self._ball_start(x, indices=keys, step=-step - 1_000_003),
                step_size=GUARD_STEP_FACTOR * self.eps,
                steps=self.guard_steps,
            )
            with torch.no_grad():
                pgd_acc = float((model(pgd).argmax(dim=1) == y).float().mean())
                fgsm_acc = float((model(fgsm).argmax(dim=1) == y).float().mean())
        return GuardCheck(epoch=epoch, step=step, pgd_accuracy=pgd_acc, fgsm_accuracy=fgsm_acc)

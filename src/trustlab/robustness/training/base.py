"""The base class of adversarial training methods, their report, and their inner maximisation.

Every method trains a classifier in place on inputs ``x`` of shape (n, ...) inside ``bounds``
with labels ``y`` of shape (n,), one mini-batch at a time, where each step first builds
perturbed inputs inside the threat model's ball (the inner maximisation) and then takes one
optimiser step on the method's loss (the outer minimisation).

Every method runs through :func:`trustlab.core.training.train`, with the method's loss as the
loss hook: the order of the examples comes from a ``torch.Generator`` seeded with ``seed``; the
model's own randomness (dropout) from torch's global generator, seeded inside a fork that
restores the caller's random state; the random starts of the inner maximisation from
:class:`~trustlab.robustness._random.ExampleRandom` keyed by ``(seed, example index, epoch)``.
The same initial weights, data and arguments give the same weights on the CPU.

The inner maximisation is a private, tight loop (:func:`inner_pgd`) rather than
:class:`~trustlab.robustness.pgd.PGD`: training needs the model left in its training mode, no
per-call input checks, clean pass or re-check, and a loss (TRADES' KL divergence) that is not
one of the attack's.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    check_labels_in_range,
    model_device_and_dtype,
)
from trustlab.core.errors import DataError
from trustlab.core.optim import optimizer_constraint
from trustlab.core.params import Constraint, validate_params
from trustlab.core.progress import ProgressCallback, ProgressEvent, resolve_progress
from trustlab.core.training import Step, model_mode, train
from trustlab.core.typing import ArrayLike
from trustlab.robustness._inputs import check_in_bounds, inputs_and_labels
from trustlab.robustness._params import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    POSITIVE,
    ThreatModelParams,
    store_params,
)
from trustlab.robustness._random import ExampleRandom
from trustlab.robustness.norms import Norm, flat, normalize, project

ProgressFn = ProgressCallback
"""Receives a :class:`~trustlab.core.progress.ProgressEvent` after each epoch."""

MSG_LOGITS = (
    "The model must return logits of shape (batch, n_classes); got {shape} for a batch of {n}."
)
MSG_TOO_FEW = "{owner} needs at least {needed} training examples; got {n}."

TrainerT = TypeVar("TrainerT", bound="AdversarialTrainer")


@dataclass(frozen=True)
class GuardCheck:
    """One check of the catastrophic-overfitting guard on its held-out mini-batch."""

    epoch: int
    step: int
    pgd_accuracy: float
    fgsm_accuracy: float


@dataclass
class TrainingReport:
    """What a training run did.

    Attributes
    ----------
    losses : list of float
        The mean training loss of each epoch run.
    epochs_run : int
        Epochs started (fewer than asked when the run stopped early).
    steps : int
        Optimiser steps taken.
    stopped_early : bool
        Whether the run stopped before its last epoch.
    checks : list of GuardCheck
        The guard's checks (fast adversarial training only).
    overfitting_detected : bool
        Whether the guard saw catastrophic overfitting.
    restored_check : int or None
        The index in ``checks`` of the checkpoint the model was rolled back to.
    """

    losses: list[float] = field(default_factory=list)
    epochs_run: int = 0
    steps: int = 0
    stopped_early: bool = False
    checks: list[GuardCheck] = field(default_factory=list)
    overfitting_detected: bool = False
    restored_check: int | None = None

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "losses": list(self.losses),
            "epochs_run": self.epochs_run,
            "steps": self.steps,
            "stopped_early": self.stopped_early,
            "checks": [check.__dict__ for check in self.checks],
            "overfitting_detected": self.overfitting_detected,
            "restored_check": self.restored_check,
        }


def inner_pgd(
    *,
    model: nn.Module,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    norm: Norm,
    eps: float,
    step_size: float,
    steps: int,
    bounds: tuple[float, float],
) -> torch.Tensor:
    """Ascend ``objective(logits)`` (a per-example loss summed inside) from ``start``.

    Each step moves along the steepest-ascent direction for ``norm`` (the gradient's sign for
    Linf, the normalised gradient for L2), then projects onto the ``eps`` ball around ``x`` and
    into ``bounds``. Returns the final iterate, detached. The model is called as it is (its
    train or eval mode is the caller's choice); parameter gradients are not touched.
    """
    low, high = bounds
    x_adv = start.detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = objective(model(x_adv))
        (grad,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            if norm is Norm.L2:
                zero = flat(grad).norm(dim=1) == 0
                if bool(zero.any()):
                    # The reference TRADES code replaces a zero gradient with a random direction.
                    grad[zero] = torch.randn_like(grad[zero])
            x_adv = x_adv.detach() + step_size * normalize(grad, norm)
            x_adv = torch.clamp(x + project(x_adv - x, norm=norm, eps=eps), low, high)
    return x_adv.detach()


class AdversarialTrainer(ThreatModelParams, abc.ABC):
    """Base class of adversarial training methods.

    Subclasses set ``name`` and ``norms``, declare their own hyperparameters in
    ``_parameter_constraints``, store them in a keyword-only ``__init__`` and then call this
    ``__init__`` with the shared ones (it ends with
    :func:`~trustlab.core.params.validate_params`), and implement :meth:`_loss` for one batch.
    :meth:`fit` does the rest: input checks, the seeded loop over shuffled mini-batches
    (:func:`trustlab.core.training.train`), the optimiser, and the report, kept as ``report_``.
    """

    name: ClassVar[str]
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "epochs": AT_LEAST_ONE,
        "lr": POSITIVE,
        "batch_size": AT_LEAST_ONE,
        "optimizer": optimizer_constraint,
        "weight_decay": NON_NEGATIVE,
    }

    norm: Norm
    eps: float
    epochs: int
    lr: float
    batch_size: int
    optimizer: str
    weight_decay: float
    bounds: tuple[float, float]
    seed: int
    report_: TrainingReport

    def __init__(
        self,
        *,
        norm: Norm | str,
        eps: float,
        epochs: int,
        lr: float,
        batch_size: int,
        optimizer: str,
        weight_decay: float,
        bounds: tuple[float, float],
        seed: int,
    ) -> None:
        store_params(
            self,
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
        validate_params(self)

    def fit(
        self: TrainerT,
        *,
        model: nn.Module,
        x: ArrayLike,
        y: ArrayLike,
        progress: ProgressFn | None = None,
    ) -> TrainerT:
        """Train ``model`` in place; keep what the run did as ``report_``.

        Parameters
        ----------
        model : torch.nn.Module
            A classifier mapping (batch, ...) to logits (batch, n_classes), on any device;
            batches are moved there. Its train/eval mode is restored afterwards.
        x : torch.Tensor or ndarray, shape (n, ...)
            Training inputs inside ``bounds``.
        y : torch.Tensor or ndarray of int, shape (n,)
            Their labels.
        progress : callable, optional
            Receives a :class:`~trustlab.core.progress.ProgressEvent` after each epoch (stage
            ``"epoch"``, the epoch from 1, the epochs, ``metrics={"loss": mean_loss}``). The
            old ``progress(epoch, mean_loss)`` shape still works, with a FutureWarning.

        Returns
        -------
        self
            The trainer, with the :class:`TrainingReport` of the run in ``report_``.

        Raises
        ------
        DataError
            If ``x`` or ``y`` are malformed, differ in length, ``x`` leaves ``bounds``, or a
            label has no logit.
        ConfigurationError
            If the loss becomes NaN or infinite (the learning rate is too high).
        """
        owner = type(self).__name__
        x_t, y_t = inputs_and_labels(x, y)
        check_in_bounds(x_t, self.bounds)
        device, dtype = model_device_and_dtype(model)
        x_t = x_t.to(dtype)
        report = TrainingReport()

        def loss(step: Step) -> torch.Tensor:
            xb, yb = step.batch["x"], step.batch["y"]
            if step.number == 0:
                self._check_logits(model, xb, yb)
                self._begin(model=model, report=report)
            report.epochs_run = step.epoch
            return self._loss(model=model, x=xb, y=yb, indices=step.index, epoch=step.epoch)

        def after_step(step: Step) -> bool:
            report.steps = step.number + 1
            return self._after_step(
                model=model,
                optimizer=step.optimizer,
                report=report,
                epoch=step.epoch,
                end_of_epoch=step.end_of_epoch,
            )

        def after_epoch(epoch: int, mean_loss: float) -> None:
            report.losses.append(mean_loss)

        callback = resolve_progress(progress, owner=owner, legacy=_legacy_epoch, arity=2)

        rows = self._prepare(model=model, x=x_t, y=y_t, device=device)
        # A guard that restores a checkpoint after the loss diverged stops the run, so the
        # loop accepts that epoch's non-finite loss; any other divergence is an error.
        history = train(
            model,
            data={"x": x_t, "y": y_t},
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            lr=self.lr,
            weight_decay=self.weight_decay,
            optimizer=self.optimizer,
            loss=loss,
            after_step=after_step,
            after_epoch=after_epoch,
            rows=rows,
            owner=owner,
            progress=callback,
        )
        report.steps = history.steps
        report.stopped_early = history.stopped_early
        self.report_ = report
        return self

    # ----------------------------------------------------------------------------------------
    # Hooks

    def _prepare(
        self, *, model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device
    ) -> torch.Tensor:
        """The rows of ``x`` to train on (a subclass may hold some out)."""
        del model, y, device
        return torch.arange(x.shape[0])

    def _begin(self, *, model: nn.Module, report: TrainingReport) -> None:
        """Called once before the first step."""
        del model, report

    def _after_step(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        report: TrainingReport,
        epoch: int,
        end_of_epoch: bool,
    ) -> bool:
        """Called after every optimiser step; returning True stops the run."""
        del model, optimizer, report, epoch, end_of_epoch
        return False

    @abc.abstractmethod
    def _loss(
        self,
        *,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        indices: torch.Tensor,
        epoch: int,
    ) -> torch.Tensor:
        """The scalar training loss of one batch (the model is in train mode).

        ``indices`` are the examples' rows in the training data: key random starts by them
        with :class:`ExampleRandom` (and by ``epoch``) so that they do not depend on the order.
        """

    # ----------------------------------------------------------------------------------------
    # Helpers for subclasses

    def _random(self) -> ExampleRandom:
        return ExampleRandom(seed=self.seed)

    def _ball_start(self, x: torch.Tensor, *, indices: torch.Tensor, step: int) -> torch.Tensor:
        """``x`` plus a uniform random point of the ball, keyed by ``(indices, step)``, clipped."""
        delta = self._random().ball(
            indices=indices, step=step, like=x, norm=self.norm, eps=self.eps
        )
        return self._clip(x + delta, x)

    def _ascend(
        self,
        model: nn.Module,
        x: torch.Tensor,
        *,
        objective: Callable[[torch.Tensor], torch.Tensor],
        start: torch.Tensor,
        step_size: float,
        steps: int,
    ) -> torch.Tensor:
        """:func:`inner_pgd` inside this trainer's threat model."""
        return inner_pgd(
            model=model,
            x=x,
            objective=objective,
            start=start,
            norm=self.norm,
            eps=self.eps,
            step_size=step_size,
            steps=steps,
            bounds=self.bounds,
        )

    def _ce_ascent(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        start: torch.Tensor,
        step_size: float,
        steps: int,
    ) -> torch.Tensor:
        """Ascend the summed cross-entropy on ``y`` from ``start`` (see :meth:`_ascend`)."""

        def objective(logits: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, y, reduction="sum")

        return self._ascend(
            model, x, objective=objective, start=start, step_size=step_size, steps=steps
        )

    def _clip(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x_adv`` projected onto the ball around ``x`` and into the valid range."""
        low, high = self.bounds
        return torch.clamp(x + project(x_adv - x, norm=self.norm, eps=self.eps), low, high)

    def _check_logits(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        with model_mode(model, training=False), torch.no_grad():
            logits = model(x)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or len(logits) != len(x):
            shape = tuple(getattr(logits, "shape", ()))
            raise DataError(MSG_LOGITS.format(shape=shape, n=len(x)))
        check_labels_in_range(y.cpu(), n_classes=int(logits.shape[1]))


def _legacy_epoch(callback: Callable[..., object], event: ProgressEvent) -> None:
    """Call an old-style ``progress(epoch, mean_loss)`` callback."""
    callback(event.done, event.metrics.get("loss", float("nan")))

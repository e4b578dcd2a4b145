"""The base class of adversarial training methods, their report, and their inner maximisation.

Every method trains a classifier in place on inputs ``x`` of shape (n, ...) inside ``bounds``
with labels ``y`` of shape (n,), one mini-batch at a time, where each step first builds
perturbed inputs inside the threat model's ball (the inner maximisation) and then takes one
optimiser step on the method's loss (the outer minimisation).

Reproducibility follows :func:`trustlab.core.training.fit_classifier`: the order of the examples
comes from a ``torch.Generator`` seeded with ``seed``; the model's own randomness (dropout) from
torch's global generator, seeded inside a fork that restores the caller's random state; the
random starts of the inner maximisation from :class:`~trustlab.robustness.base.ExampleRandom`
keyed by ``(seed, example index, epoch)``. The same initial weights, data and arguments give
the same weights on the CPU.

The inner maximisation is a private, tight loop (:func:`inner_pgd`) rather than
:class:`~trustlab.robustness.pgd.PGD`: training needs the model left in its training mode, no
per-call input checks, clean pass or re-check, and a loss (TRADES' KL divergence) that is not
one of the attack's.
"""

from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_labels_in_range,
    check_same_length,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.training import OPTIMIZERS
from trustlab.core.typing import ArrayLike
from trustlab.robustness.base import (
    ExampleRandom,
    Norm,
    check_bounds,
    check_int,
    check_non_negative,
    check_positive,
    eval_mode,
    flat,
    normalize,
    project,
)

ProgressFn = Callable[[int, float], None]
"""Called as ``progress(epoch, mean_loss)`` after each epoch (epochs count from 1)."""

MSG_OPTIMIZER = "The 'optimizer' parameter of {owner} must be one of {allowed}. Got {value!r}."
MSG_OUT_OF_BOUNDS = (
    "x holds values outside the valid input range {bounds}: example {index} has {value:.6g}. "
    "Scale inputs to the range (e.g. divide pixels by 255) or pass bounds=(low, high)."
)
MSG_LOGITS = (
    "The model must return logits of shape (batch, n_classes); got {shape} for a batch of {n}."
)
MSG_DIVERGED = (
    "The training loss of {owner} became {loss} in epoch {epoch}; lower the learning rate "
    "(lr={lr})."
)
MSG_TOO_FEW = "{owner} needs at least {needed} training examples; got {n}."

SGD_MOMENTUM = 0.9


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


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generators inside a fork that restores them on exit."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _train_mode(model: nn.Module) -> Iterator[None]:
    modes = [(module, module.training) for module in model.modules()]
    model.train()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


class AdversarialTrainer(abc.ABC):
    """Base class of adversarial training methods.

    Subclasses set ``name`` and ``norms``, store their hyperparameters in a keyword-only
    ``__init__`` (calling :meth:`_init_common`), and implement :meth:`_loss` for one batch.
    :meth:`fit` does the rest: input checks, the seeded loop over shuffled mini-batches, the
    optimiser, and the report, also kept as ``report_``.
    """

    name: ClassVar[str]
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)

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

    def _init_common(
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
        owner = type(self).__name__
        self.norm = Norm.parse(norm, owner=owner, allowed=self.norms)
        self.eps = check_positive(eps, name="eps", owner=owner)
        self.epochs = check_int(epochs, name="epochs", owner=owner)
        self.lr = check_positive(lr, name="lr", owner=owner)
        self.batch_size = check_int(batch_size, name="batch_size", owner=owner)
        if optimizer not in OPTIMIZERS:
            allowed = ", ".join(repr(name) for name in OPTIMIZERS)
            raise ConfigurationError(
                MSG_OPTIMIZER.format(owner=owner, allowed=allowed, value=optimizer)
            )
        self.optimizer = optimizer
        self.weight_decay = check_non_negative(weight_decay, name="weight_decay", owner=owner)
        self.bounds = check_bounds(bounds, owner=owner)
        self.seed = check_int(seed, name="seed", owner=owner, low=0)

    def fit(
        self,
        *,
        model: nn.Module,
        x: ArrayLike,
        y: ArrayLike,
        progress: ProgressFn | None = None,
    ) -> TrainingReport:
        """Train ``model`` in place; return (and keep as ``report_``) what the run did.

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
            Called as ``progress(epoch, mean_loss)`` after each epoch.

        Raises
        ------
        DataError
            If ``x`` or ``y`` are malformed, differ in length, ``x`` leaves ``bounds``, or a
            label has no logit.
        ConfigurationError
            If the loss becomes NaN or infinite (the learning rate is too high).
        """
        owner = type(self).__name__
        x_t = as_input_tensor(x)
        x_t = x_t.float() if not x_t.is_floating_point() else x_t
        y_t = as_label_tensor(y)
        check_same_length(first="x", n_first=x_t.shape[0], second="y", n_second=y_t.shape[0])
        self._check_range(x_t)
        device, dtype = model_device_and_dtype(model)
        x_t = x_t.to(dtype)
        report = TrainingReport()
        with _seeded(self.seed, device), _train_mode(model):
            train_rows = self._prepare(model=model, x=x_t, y=y_t, device=device)
            n = int(train_rows.shape[0])
            if n < 1:
                raise DataError(MSG_TOO_FEW.format(owner=owner, needed=1, n=n))
            params = [p for p in model.parameters() if p.requires_grad]
            opt = _make_optimizer(
                self.optimizer, params, lr=self.lr, weight_decay=self.weight_decay
            )
            generator = torch.Generator().manual_seed(self.seed)
            self._begin(model=model, report=report)
            for epoch in range(1, self.epochs + 1):
                report.epochs_run = epoch
                order = train_rows[torch.randperm(n, generator=generator)]
                total, seen = 0.0, 0
                for start in range(0, n, self.batch_size):
                    rows = order[start : start + self.batch_size]
                    xb = x_t[rows].to(device)
                    yb = y_t[rows].to(device)
                    if report.steps == 0:
                        self._check_logits(model, xb, yb)
                    loss = self._loss(model=model, x=xb, y=yb, indices=rows, epoch=epoch)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    report.steps += 1
                    total += float(loss.detach()) * len(rows)
                    seen += len(rows)
                    end_of_epoch = start + self.batch_size >= n
                    if self._after_step(
                        model=model,
                        optimizer=opt,
                        report=report,
                        epoch=epoch,
                        end_of_epoch=end_of_epoch,
                    ):
                        report.stopped_early = not (end_of_epoch and epoch == self.epochs)
                        break
                mean_loss = total / seen
                if not math.isfinite(mean_loss) and not report.overfitting_detected:
                    raise ConfigurationError(
                        MSG_DIVERGED.format(owner=owner, loss=mean_loss, epoch=epoch, lr=self.lr)
                    )
                report.losses.append(mean_loss)
                if progress is not None:
                    progress(epoch, mean_loss)
                if report.stopped_early:
                    break
        self.report_ = report
        return report

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

    def _check_range(self, x: torch.Tensor) -> None:
        low, high = self.bounds
        rows = flat(x)
        below = rows.amin(dim=1) < low
        above = rows.amax(dim=1) > high
        bad = below | above
        if bool(bad.any()):
            index = int(torch.argmax(bad.to(torch.uint8)))
            value = float(rows[index].min()) if bool(below[index]) else float(rows[index].max())
            raise DataError(MSG_OUT_OF_BOUNDS.format(bounds=self.bounds, index=index, value=value))

    def _check_logits(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        with eval_mode(model), torch.no_grad():
            logits = model(x)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or len(logits) != len(x):
            shape = tuple(getattr(logits, "shape", ()))
            raise DataError(MSG_LOGITS.format(shape=shape, n=len(x)))
        check_labels_in_range(y.cpu(), n_classes=int(logits.shape[1]))


def _make_optimizer(
    name: str, params: list[torch.nn.Parameter], *, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay)

"""The one training loop of trustlab, the classifier trainer built on it, and batched prediction.

:func:`train` is the loop every trainer of the library runs (task targets, adversarial
training, fairness mitigations, extraction surrogates), customised with a loss or step hook.
:func:`fit_classifier` trains a classifier with cross-entropy, reproducibly: with the same
initial weights, data and ``seed`` it produces bit-identical weights on the CPU. Shuffling uses
a local ``torch.Generator``; dropout draws from torch's global generator, which is seeded with
``seed`` inside a fork that restores the caller's random state afterwards; and
``torch.use_deterministic_algorithms`` is switched on only for the duration of the call.
Initial weights come from torch's global generator when the model is built, so call
:func:`seed_everything` (or ``torch.manual_seed``) *before* ``build_model``.

Examples
--------
>>> import numpy as np
>>> from trustlab.core.models import build_model
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(200, 2)).astype(np.float32)
>>> y = (x[:, 0] > 0).astype(np.int64)
>>> seed_everything(0)
>>> model = build_model("mlp", arguments={"in_features": 2, "hidden": [16]})
>>> losses = fit_classifier(model, x, y, epochs=20, lr=1e-2)
>>> accuracy(model, x, y) > 0.95
True
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    compute_logits,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.optim import OPTIMIZERS, make_optimizer
from trustlab.core.params import Integer, Options, Real, Seed, check_param
from trustlab.core.progress import ProgressCallback, ProgressEvent, report, resolve_progress
from trustlab.core.seeding import seed_everything, seeded
from trustlab.core.typing import ArrayLike

__all__ = [
    "OPTIMIZERS",
    "Step",
    "TrainingHistory",
    "accuracy",
    "fit_classifier",
    "model_mode",
    "predict_logits",
    "seed_everything",
    "train",
]

MSG_X_NDIM = (
    "x must have shape (n_samples, ...) with at least 2 dimensions. Got shape {shape} instead."
)
MSG_X_DTYPE = "x must hold real numbers. Got dtype {dtype} instead."
MSG_Y_NEGATIVE = "y must hold class labels >= 0. Got the label {label}."
MSG_LENGTH_MISMATCH = "x and y must have the same number of samples. Got {n_x} and {n_y}."
MSG_DATA_LENGTH = (
    "Every training tensor must have one row per example: {name!r} has {n} rows, x has {n_x}."
)
MSG_DATA_NO_X = "The training data must hold the inputs under the key 'x'."
MSG_LOGITS_SHAPE = "The model must return logits of shape (batch, n_classes). Got shape {shape}."
MSG_TOO_FEW_CLASSES = (
    "y holds the label {label} but the model returns only {n_classes} logits; build the model "
    "with num_classes >= {needed}."
)
MSG_DIVERGED = (
    "The training loss of {owner} became {loss} in epoch {epoch}; lower the learning rate "
    "(lr={lr})."
)
MSG_LOSS_AND_STEP = "Pass either loss= or step= to train(), not both."
MSG_NO_ROWS = "{owner} has no rows to train on; pass at least one example."

_POSITIVE = Real(low=0, closed="neither")
_NON_NEGATIVE = Real(low=0)
_AT_LEAST_ONE = Integer(low=1)
_SAMPLING = Options("shuffle", "poisson")


@dataclass
class Step:
    """What a training hook sees for one mini-batch.

    Attributes
    ----------
    model : torch.nn.Module
        The model being trained (in train mode).
    batch : dict[str, torch.Tensor]
        The batch's rows of every training tensor (``"x"``, usually ``"y"``, and any extras
        such as sample weights or groups), on the model's device; floating-point tensors in the
        model's dtype.
    index : torch.Tensor
        The positions of the batch's rows in the training data (int64, on the CPU): they key
        per-example state such as random draws.
    epoch : int
        The epoch, from 1.
    number : int
        The step's number over the whole run, from 0.
    end_of_epoch : bool
        Whether this is the epoch's last batch.
    optimizer : torch.optim.Optimizer
        The optimiser the loop steps.
    """

    model: nn.Module
    batch: dict[str, torch.Tensor]
    index: torch.Tensor
    epoch: int
    number: int
    end_of_epoch: bool
    optimizer: torch.optim.Optimizer


@dataclass
class TrainingHistory:
    """What :func:`train` did.

    Attributes
    ----------
    losses : list[float]
        The mean loss of each epoch run (over examples).
    steps : int
        Optimisation steps taken.
    epochs_run : int
        Epochs started.
    stopped_early : bool
        Whether a hook stopped the run before its last step.
    """

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    epochs_run: int = 0
    stopped_early: bool = False


LossFn = Callable[[Step], torch.Tensor]
"""Returns the batch's scalar loss; the loop zeroes the gradients, back-propagates and steps."""

StepFn = Callable[[Step], "torch.Tensor | float"]
"""Takes the whole optimisation step itself and returns the batch's mean loss."""

AfterStepFn = Callable[[Step], "bool | None"]
"""Called after each step; returning True stops the run."""

AfterEpochFn = Callable[[int, float], "bool | None"]
"""Called as ``after_epoch(epoch, mean_loss)``; returning True stops the run."""


def cross_entropy_loss(step: Step) -> torch.Tensor:
    """The default loss of :func:`train`: mean cross-entropy of ``model(x)`` against ``y``."""
    return F.cross_entropy(step.model(step.batch["x"]), step.batch["y"])


@contextlib.contextmanager
def model_mode(model: nn.Module, *, training: bool) -> Iterator[None]:
    """Put ``model`` in train or eval mode and restore every submodule's mode on exit."""
    modes = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield
    finally:
        for module, was_training in modes:
            module.training = was_training


def _on_device(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    tensor = tensor.to(device, non_blocking=True)
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def train(
    model: nn.Module,
    *,
    data: Mapping[str, torch.Tensor],
    epochs: int,
    batch_size: int,
    seed: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str | torch.optim.Optimizer = "adam",
    loss: LossFn | None = None,
    step: StepFn | None = None,
    after_step: AfterStepFn | None = None,
    after_epoch: AfterEpochFn | None = None,
    rows: torch.Tensor | None = None,
    sampling: str = "shuffle",
    deterministic: bool = False,
    owner: str = "train",
    progress: ProgressCallback | None = None,
) -> TrainingHistory:
    """The one training loop of trustlab: seeded, shuffled mini-batches with hooks.

    Every trainer of the library (classifiers, adversarial training, fairness mitigations,
    extraction surrogates, task targets) runs through this loop and customises it with hooks:
    ``loss`` computes a batch's loss (the loop takes the optimiser step), or ``step`` takes the
    whole step itself (several optimisers, gradient surgery); ``after_step`` and
    ``after_epoch`` observe and may stop the run.

    Each epoch visits the rows in an order drawn from a local generator seeded with ``seed``;
    randomness inside the model or the hooks (dropout, random starts) draws from torch's global
    generator, seeded with ``seed`` inside a fork that restores the caller's state afterwards.
    The model keeps its device and its train/eval mode. The loop does not synchronise with the
    device within an epoch: losses are summed on the device and read once per epoch.

    Parameters
    ----------
    model : torch.nn.Module
        The model to train in place.
    data : Mapping[str, torch.Tensor]
        The training tensors, one row per example, on any device: ``"x"`` (required), and
        whatever the hooks read (``"y"`` for the default loss, sample weights, groups, ...).
    epochs : int
        Passes over the data, >= 1.
    batch_size : int
        Rows per step, >= 1; the last batch of an epoch may be smaller.
    seed : int
        Seed of the shuffling and of the randomness drawn inside the run.
    lr : float, default=1e-3
        Learning rate of a named optimiser.
    weight_decay : float, default=0.0
        Weight decay of a named optimiser.
    optimizer : {"adam", "adamw", "sgd"} or torch.optim.Optimizer, default="adam"
        A name for :func:`~trustlab.core.optim.make_optimizer`, or a ready optimiser (with its
        own schedule).
    loss : callable, optional
        ``loss(step) -> scalar tensor``; defaults to cross-entropy of ``model(x)`` on ``y``.
    step : callable, optional
        ``step(step) -> loss`` that updates the model itself; excludes ``loss``.
    after_step, after_epoch : callable, optional
        Hooks; returning True stops the run.
    rows : torch.Tensor, optional
        The positions of the rows to train on (default: all).
    sampling : {"shuffle", "poisson"}, default="shuffle"
        ``"shuffle"``: each epoch visits every row once, in batches of ``batch_size``.
        ``"poisson"``: each epoch takes ``k = ceil(n / batch_size)`` steps, and each step
        includes every row independently with probability ``1 / k`` (the sampling, and the
        sample rate, that DP-SGD's privacy accounting in Opacus assumes); a batch may be empty,
        and the hooks still see it.
    deterministic : bool, default=False
        Switch on deterministic algorithms for the run (see :func:`~trustlab.core.seeding.seeded`).
    owner : str, default="train"
        The class or function named in error messages.
    progress : callable, optional
        Receives a :class:`~trustlab.core.progress.ProgressEvent` after each epoch: stage
        ``"epoch"``, ``done`` the epoch, ``total`` the epochs, ``metrics={"loss": mean_loss}``.

    Returns
    -------
    TrainingHistory

    Raises
    ------
    DataError
        If ``data`` has no ``"x"``, its tensors differ in length, or there is no row to train on.
    ConfigurationError
        If a hyperparameter is out of range, or the epoch's loss becomes NaN or infinite
        (unless ``after_step`` stopped the run in that epoch).
    """
    epochs = check_param(epochs, _AT_LEAST_ONE, name="epochs", owner=owner)
    batch_size = check_param(batch_size, _AT_LEAST_ONE, name="batch_size", owner=owner)
    seed = check_param(seed, Seed, name="seed", owner=owner)
    sampling = check_param(sampling, _SAMPLING, name="sampling", owner=owner)
    if loss is not None and step is not None:
        raise ConfigurationError(MSG_LOSS_AND_STEP)
    if "x" not in data:
        raise DataError(MSG_DATA_NO_X)
    n_x = int(data["x"].shape[0])
    for name, tensor in data.items():
        if int(tensor.shape[0]) != n_x:
            raise DataError(MSG_DATA_LENGTH.format(name=name, n=int(tensor.shape[0]), n_x=n_x))
    order_rows = torch.arange(n_x) if rows is None else rows.detach().cpu().long()
    n = int(order_rows.shape[0])
    if n < 1:
        raise DataError(MSG_NO_ROWS.format(owner=owner))
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
        lr_value = opt.param_groups[0].get("lr", lr)
    else:
        lr_value = check_param(lr, _POSITIVE, name="lr", owner=owner)
        weight_decay = check_param(weight_decay, _NON_NEGATIVE, name="weight_decay", owner=owner)
        opt = make_optimizer(optimizer, model, lr=lr_value, weight_decay=weight_decay, owner=owner)
    loss_fn = loss or cross_entropy_loss
    device, dtype = model_device_and_dtype(model)
    generator = torch.Generator().manual_seed(seed)
    history = TrainingHistory()
    with seeded(seed, device=device, deterministic=deterministic), model_mode(model, training=True):
        for epoch in range(1, epochs + 1):
            history.epochs_run = epoch
            total = torch.zeros((), dtype=torch.float64, device=device)
            seen = 0
            stop = False
            for index, last in _epoch_batches(
                order_rows, batch_size=batch_size, sampling=sampling, generator=generator
            ):
                info = Step(
                    model=model,
                    batch={
                        name: _on_device(tensor[index.to(tensor.device)], device, dtype)
                        for name, tensor in data.items()
                    },
                    index=index,
                    epoch=epoch,
                    number=history.steps,
                    end_of_epoch=last,
                    optimizer=opt,
                )
                if step is not None:
                    value = step(info)
                else:
                    value = loss_fn(info)
                    opt.zero_grad(set_to_none=True)
                    value.backward()
                    opt.step()
                history.steps += 1
                if len(index):  # an empty Poisson batch has no mean loss
                    if isinstance(value, torch.Tensor):
                        total += value.detach().to(device, torch.float64) * len(index)
                    else:
                        total += float(value) * len(index)
                    seen += len(index)
                if after_step is not None and after_step(info):
                    history.stopped_early = not (info.end_of_epoch and epoch == epochs)
                    stop = True
                    break
            mean_loss = float(total) / max(seen, 1)
            # A hook that stopped the run (e.g. a guard that restored a checkpoint after the
            # loss diverged) owns the epoch's loss; otherwise a NaN or infinite loss is an error.
            if not math.isfinite(mean_loss) and not stop:
                raise ConfigurationError(
                    MSG_DIVERGED.format(owner=owner, loss=mean_loss, epoch=epoch, lr=lr_value)
                )
            history.losses.append(mean_loss)
            report(progress, stage="epoch", done=epoch, total=epochs, metrics={"loss": mean_loss})
            if after_epoch is not None and after_epoch(epoch, mean_loss) and epoch < epochs:
                history.stopped_early = True
                stop = True
            if stop:
                break
    return history


def _epoch_batches(
    rows: torch.Tensor, *, batch_size: int, sampling: str, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, bool]]:
    """The row positions of each batch of one epoch, with a flag on the epoch's last batch."""
    n = int(rows.shape[0])
    if sampling == "shuffle":
        order = rows[torch.randperm(n, generator=generator)]
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size], start + batch_size >= n
        return
    n_steps = math.ceil(n / batch_size)
    rate = 1.0 / n_steps  # Opacus's sample rate for a loader of n_steps batches
    for number in range(n_steps):
        chosen = torch.rand(n, generator=generator) < rate
        yield rows[chosen], number == n_steps - 1


def _features(x: ArrayLike) -> torch.Tensor:
    """Validate ``x`` and return it as a float32 CPU tensor of shape ``(N, ...)``."""
    tensor = as_input_tensor(x)
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise DataError(MSG_X_DTYPE.format(dtype=tensor.dtype))
    if tensor.dim() < 2:
        raise DataError(MSG_X_NDIM.format(shape=tuple(tensor.shape)))
    return tensor.cpu().to(torch.float32)


def _labels(y: ArrayLike, n_samples: int) -> torch.Tensor:
    """Validate ``y`` and return it as an int64 CPU tensor of shape ``(N,)``."""
    labels = as_label_tensor(y)
    if labels.shape[0] != n_samples:
        raise DataError(MSG_LENGTH_MISMATCH.format(n_x=n_samples, n_y=labels.shape[0]))
    if int(labels.min()) < 0:
        raise DataError(MSG_Y_NEGATIVE.format(label=int(labels.min())))
    return labels


def _check_logits(logits: torch.Tensor, max_label: int | None = None) -> None:
    if logits.dim() != 2:
        raise DataError(MSG_LOGITS_SHAPE.format(shape=tuple(logits.shape)))
    if max_label is not None and max_label >= logits.shape[1]:
        raise DataError(
            MSG_TOO_FEW_CLASSES.format(
                label=max_label, n_classes=logits.shape[1], needed=max_label + 1
            )
        )


def fit_classifier(
    model: nn.Module,
    x: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
    optimizer: str = "adam",
    progress: ProgressCallback | None = None,
) -> list[float]:
    """Train ``model`` in place with cross-entropy, reproducibly.

    A thin shell over :func:`train` with deterministic algorithms switched on: with the same
    initial weights (seed torch before building the model), data and arguments, the trained
    weights are bit-identical on the CPU. On CUDA, also set ``CUBLAS_WORKSPACE_CONFIG=:4096:8``;
    ops without a deterministic CUDA kernel warn. The model keeps its device and its train/eval
    mode; batches are moved to the device of its parameters.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits of shape ``(batch, n_classes)``.
    x : numpy.ndarray or torch.Tensor
        Inputs of shape ``(n_samples, ...)`` as the model expects them; cast to float32.
    y : numpy.ndarray or torch.Tensor
        Integer labels of shape ``(n_samples,)`` in ``[0, n_classes)``.
    epochs : int
        Passes over the data, >= 1.
    lr : float, default=1e-3
        Learning rate.
    batch_size : int, default=64
        Samples per step; the last batch of an epoch may be smaller.
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``).
    seed : int, default=0
        Seed of the shuffling and of the model's own randomness (dropout).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        ``"sgd"`` uses momentum 0.9.
    progress : callable, optional
        Receives a :class:`~trustlab.core.progress.ProgressEvent` after each epoch (stage
        ``"epoch"``, the epoch from 1, the epochs, ``metrics={"loss": mean_loss}``). The old
        ``progress(epoch, mean_loss)`` shape still works, with a FutureWarning.

    Returns
    -------
    list[float]
        The mean training loss of each epoch.

    Raises
    ------
    DataError
        If ``x`` or ``y`` have the wrong shape or type, different lengths, NaN or infinite
        values, negative labels, or labels the model has no logit for.
    ConfigurationError
        If a hyperparameter is out of range or the loss becomes NaN (learning rate too high).

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> _ = torch.manual_seed(0)
    >>> model = build_model("mlp", arguments={"in_features": 3})
    >>> x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    >>> len(fit_classifier(model, x, y, epochs=2, batch_size=8))
    2
    """
    owner = "fit_classifier"
    epochs = check_param(epochs, _AT_LEAST_ONE, name="epochs", owner=owner)
    batch_size = check_param(batch_size, _AT_LEAST_ONE, name="batch_size", owner=owner)
    lr = check_param(lr, _POSITIVE, name="lr", owner=owner)
    weight_decay = check_param(weight_decay, _NON_NEGATIVE, name="weight_decay", owner=owner)
    seed = check_param(seed, Seed, name="seed", owner=owner)
    opt = make_optimizer(optimizer, model, lr=lr, weight_decay=weight_decay, owner=owner)
    features = _features(x)
    labels = _labels(y, features.shape[0])
    max_label = int(labels.max())

    def loss(step: Step) -> torch.Tensor:
        logits = step.model(step.batch["x"])
        if step.number == 0:
            _check_logits(logits, max_label)
        return F.cross_entropy(logits, step.batch["y"])

    callback = resolve_progress(progress, owner=owner, legacy=_legacy_epoch, arity=2)
    history = train(
        model,
        data={"x": features, "y": labels},
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        lr=lr,
        optimizer=opt,
        loss=loss,
        deterministic=True,
        owner=owner,
        progress=callback,
    )
    return history.losses


def _legacy_epoch(callback: Callable[..., object], event: ProgressEvent) -> None:
    """Call an old-style ``progress(epoch, mean_loss)`` callback."""
    callback(event.done, event.metrics.get("loss", math.nan))


def predict_logits(model: nn.Module, x: ArrayLike, *, batch_size: int = 1024) -> torch.Tensor:
    """Compute the model's logits in eval mode, without gradients, batch by batch.

    Compute logits once and reuse them for every metric that needs them. The model's
    train/eval mode is restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits of shape ``(batch, n_classes)``.
    x : numpy.ndarray or torch.Tensor
        Inputs of shape ``(n_samples, ...)``; cast to float32.
    batch_size : int, default=1024
        Samples per forward pass.

    Returns
    -------
    torch.Tensor
        Float32 logits of shape ``(n_samples, n_classes)``, on the CPU.

    Raises
    ------
    DataError
        If ``x`` is empty, has fewer than 2 dimensions or holds NaN or infinity.

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> model = build_model("digits-cnn")
    >>> predict_logits(model, torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 10])
    """
    batch_size = check_param(batch_size, _AT_LEAST_ONE, name="batch_size", owner="predict_logits")
    logits = compute_logits(
        model=model, x=_features(x), batch_size=batch_size, require_finite=False
    )
    return logits.to(torch.float32)


def accuracy(model: nn.Module, x: ArrayLike, y: ArrayLike) -> float:
    """Fraction of samples whose arg-max logit is the true label.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits.
    x : numpy.ndarray or torch.Tensor
        Inputs of shape ``(n_samples, ...)``.
    y : numpy.ndarray or torch.Tensor
        Integer labels of shape ``(n_samples,)``.

    Returns
    -------
    float
        Accuracy in ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> model = build_model("mlp", arguments={"in_features": 2})
    >>> 0.0 <= accuracy(model, torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])) <= 1.0
    True
    """
    features = _features(x)
    labels = _labels(y, features.shape[0])
    predictions = predict_logits(model, features).argmax(dim=1)
    return float((predictions == labels).to(torch.float64).mean())

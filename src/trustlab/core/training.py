"""A small, deterministic training loop for classifiers, and batched prediction.

It trains the reference and target models of the tasks (and the shadow models of the
privacy attacks), so its results must be reproducible: with the same initial weights, data
and ``seed``, :func:`fit_classifier` produces bit-identical weights on the CPU. Shuffling uses
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
import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.typing import ArrayLike

__all__ = ["OPTIMIZERS", "accuracy", "fit_classifier", "predict_logits", "seed_everything"]

#: Optimizer names accepted by :func:`fit_classifier`.
OPTIMIZERS = ("adam", "adamw", "sgd")
SGD_MOMENTUM = 0.9
MAX_SEED = 2**32 - 1

MSG_BAD_INT = "The {arg!r} parameter of {func} must be an int >= {low}. Got {value!r} instead."
MSG_BAD_SEED = (
    "The 'seed' parameter of {func} must be an int in [0, 2**32 - 1]. Got {value!r} instead."
)
MSG_BAD_POSITIVE = (
    "The {arg!r} parameter of {func} must be a finite float > 0. Got {value!r} instead."
)
MSG_BAD_NON_NEGATIVE = (
    "The {arg!r} parameter of {func} must be a finite float >= 0. Got {value!r} instead."
)
MSG_BAD_OPTIMIZER = (
    "The 'optimizer' parameter of fit_classifier must be one of {choices}. Got {value!r} instead."
)
MSG_NOT_ARRAY = "{name} must be a numpy array or a torch tensor. Got {type} instead."
MSG_X_NDIM = (
    "x must have shape (n_samples, ...) with at least 2 dimensions. Got shape {shape} instead."
)
MSG_EMPTY = "{name} is empty; at least one sample is needed."
MSG_X_DTYPE = "x must hold real numbers. Got dtype {dtype} instead."
MSG_X_NOT_FINITE = "x contains {count} NaN or infinite value(s); clean or impute them first."
MSG_Y_NDIM = "y must have shape (n_samples,). Got shape {shape} instead."
MSG_Y_DTYPE = (
    "y must hold integer class labels (0, 1, ...). Got dtype {dtype} instead; convert with "
    "y.astype(np.int64) or encode the labels first."
)
MSG_Y_NEGATIVE = "y must hold class labels >= 0. Got the label {label}."
MSG_LENGTH_MISMATCH = "x and y must have the same number of samples. Got {n_x} and {n_y}."
MSG_LOGITS_SHAPE = "The model must return logits of shape (batch, n_classes). Got shape {shape}."
MSG_TOO_FEW_CLASSES = (
    "y holds the label {label} but the model returns only {n_classes} logits; build the model "
    "with num_classes >= {needed}."
)
MSG_DIVERGED = (
    "The training loss became {loss} in epoch {epoch}; lower the learning rate (lr={lr})."
)


def _check_int(func: str, arg: str, value: object, *, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigurationError(MSG_BAD_INT.format(arg=arg, func=func, low=low, value=value))
    return value


def _check_float(func: str, arg: str, value: object, *, positive: bool) -> float:
    if (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > 0 or (value == 0 and not positive))
    ):
        return float(value)
    message = MSG_BAD_POSITIVE if positive else MSG_BAD_NON_NEGATIVE
    raise ConfigurationError(message.format(arg=arg, func=func, value=value))


def _check_seed(func: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigurationError(MSG_BAD_SEED.format(func=func, value=value))
    return value


def _as_tensor(name: str, value: ArrayLike) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise DataError(MSG_NOT_ARRAY.format(name=name, type="an object array"))
        return torch.from_numpy(np.ascontiguousarray(value))
    raise DataError(MSG_NOT_ARRAY.format(name=name, type=type(value).__name__))


def _features(x: ArrayLike) -> torch.Tensor:
    """Validate ``x`` and return it as a float32 CPU tensor of shape ``(N, ...)``."""
    tensor = _as_tensor("x", x)
    if tensor.dim() < 2:
        raise DataError(MSG_X_NDIM.format(shape=tuple(tensor.shape)))
    if tensor.shape[0] == 0:
        raise DataError(MSG_EMPTY.format(name="x"))
    if tensor.is_complex() or not (tensor.is_floating_point() or _is_integer(tensor)):
        raise DataError(MSG_X_DTYPE.format(dtype=tensor.dtype))
    tensor = tensor.to(torch.float32)
    bad = int((~torch.isfinite(tensor)).sum())
    if bad:
        raise DataError(MSG_X_NOT_FINITE.format(count=bad))
    return tensor


def _is_integer(tensor: torch.Tensor) -> bool:
    return not tensor.is_floating_point() and not tensor.is_complex() and tensor.dtype != torch.bool


def _labels(y: ArrayLike, n_samples: int) -> torch.Tensor:
    """Validate ``y`` and return it as an int64 CPU tensor of shape ``(N,)``."""
    tensor = _as_tensor("y", y)
    if tensor.dim() != 1:
        raise DataError(MSG_Y_NDIM.format(shape=tuple(tensor.shape)))
    if not _is_integer(tensor):
        raise DataError(MSG_Y_DTYPE.format(dtype=tensor.dtype))
    if tensor.shape[0] != n_samples:
        raise DataError(MSG_LENGTH_MISMATCH.format(n_x=n_samples, n_y=tensor.shape[0]))
    tensor = tensor.to(torch.int64)
    if int(tensor.min()) < 0:
        raise DataError(MSG_Y_NEGATIVE.format(label=int(tensor.min())))
    return tensor


def _device_of(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def _check_logits(logits: torch.Tensor, max_label: int | None = None) -> None:
    if logits.dim() != 2:
        raise DataError(MSG_LOGITS_SHAPE.format(shape=tuple(logits.shape)))
    if max_label is not None and max_label >= logits.shape[1]:
        raise DataError(
            MSG_TOO_FEW_CLASSES.format(
                label=max_label, n_classes=logits.shape[1], needed=max_label + 1
            )
        )


@contextlib.contextmanager
def _deterministic(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch and switch on deterministic algorithms; restore everything on exit."""
    devices = [device.index or 0] if device.type == "cuda" else []
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_benchmark = torch.backends.cudnn.benchmark
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        # warn_only: a CUDA op without a deterministic kernel warns instead of failing.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
            torch.backends.cudnn.benchmark = previous_benchmark


@contextlib.contextmanager
def _mode(model: nn.Module, *, training: bool) -> Iterator[None]:
    """Put ``model`` in train or eval mode and restore its previous mode on exit."""
    previous = model.training
    model.train(training)
    try:
        yield
    finally:
        model.train(previous)


def _make_optimizer(
    name: str, model: nn.Module, *, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    params = [param for param in model.parameters() if param.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay)


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
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with cross-entropy, reproducibly.

    Each epoch visits the samples once in an order drawn from a ``torch.Generator`` seeded
    with ``seed``; dropout and other randomness inside the model are seeded from ``seed`` too,
    and the caller's global random state is restored afterwards. With the same initial weights
    (seed torch before building the model), data and arguments, the trained weights are
    bit-identical on the CPU. On CUDA, also set ``CUBLAS_WORKSPACE_CONFIG=:4096:8``; ops
    without a deterministic CUDA kernel warn. The model keeps its device and its train/eval
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
    progress : Callable[[int, float], None], optional
        Called after each epoch with the epoch number (from 1) and its mean loss.

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
    func = "fit_classifier"
    epochs = _check_int(func, "epochs", epochs)
    batch_size = _check_int(func, "batch_size", batch_size)
    lr = _check_float(func, "lr", lr, positive=True)
    weight_decay = _check_float(func, "weight_decay", weight_decay, positive=False)
    seed = _check_seed(func, seed)
    if optimizer not in OPTIMIZERS:
        raise ConfigurationError(
            MSG_BAD_OPTIMIZER.format(choices=", ".join(map(repr, OPTIMIZERS)), value=optimizer)
        )
    features = _features(x)
    labels = _labels(y, features.shape[0])
    max_label = int(labels.max())
    n_samples = features.shape[0]
    device = _device_of(model)
    opt = _make_optimizer(optimizer, model, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history: list[float] = []
    with _deterministic(seed, device), _mode(model, training=True):
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n_samples, generator=generator)
            total = 0.0
            for start in range(0, n_samples, batch_size):
                index = order[start : start + batch_size]
                xb = features[index].to(device)
                yb = labels[index].to(device)
                logits = model(xb)
                if epoch == 1 and start == 0:
                    _check_logits(logits, max_label)
                loss = F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(index)
            mean_loss = total / n_samples
            if not math.isfinite(mean_loss):
                raise ConfigurationError(MSG_DIVERGED.format(loss=mean_loss, epoch=epoch, lr=lr))
            history.append(mean_loss)
            if progress is not None:
                progress(epoch, mean_loss)
    return history


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
    batch_size = _check_int("predict_logits", "batch_size", batch_size)
    features = _features(x)
    device = _device_of(model)
    outputs: list[torch.Tensor] = []
    with _mode(model, training=False), torch.no_grad():
        for start in range(0, features.shape[0], batch_size):
            logits = model(features[start : start + batch_size].to(device))
            _check_logits(logits)
            outputs.append(logits.detach().to("cpu", torch.float32))
    return torch.cat(outputs)


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


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Parameters
    ----------
    seed : int
        In ``[0, 2**32 - 1]``.

    Examples
    --------
    >>> import torch
    >>> seed_everything(0); a = torch.rand(1)
    >>> seed_everything(0); bool((torch.rand(1) == a).all())
    True
    """
    seed = _check_seed("seed_everything", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

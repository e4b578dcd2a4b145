"""Training helpers shared by the in-processing mitigations: checked tensors, seeding, batches,
and a cross-entropy loop with per-example weights."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    check_same_length,
    compute_logits,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.fairness._inputs import Groups, as_class_labels, as_groups
from trustlab.fairness.base import MitigationReport, check_float, check_int, report_of
from trustlab.fairness.metrics import SensitiveFeatures

MSG_NOT_BINARY = (
    "y must hold the labels 0 and 1 (1 = favourable outcome) for {owner}; found {value} at "
    "index {index}."
)
MSG_TWO_LOGITS = (
    "{owner} needs a two-class model returning logits of shape (batch, 2); got shape {shape}."
)
MSG_DIVERGED = (
    "The training loss of {owner} became {loss} in epoch {epoch}; lower the learning rate."
)


@dataclass(frozen=True)
class TrainingData:
    """Checked training data as CPU tensors."""

    x: torch.Tensor
    y: torch.Tensor
    group: torch.Tensor
    groups: Groups

    def __len__(self) -> int:
        return int(self.y.shape[0])


def training_data(
    *, x: ArrayLike, y: ArrayLike, sensitive_features: SensitiveFeatures, owner: str
) -> TrainingData:
    """Check ``x``, binary ``y`` and the groups, and return them as tensors."""
    inputs = as_input_tensor(x)
    labels = as_class_labels(y, name="y")
    check_same_length(first="x", n_first=inputs.shape[0], second="y", n_second=len(labels))
    binary = (labels == 0) | (labels == 1)
    if not binary.all():
        index = int(np.argmin(binary))
        raise DataError(MSG_NOT_BINARY.format(owner=owner, value=int(labels[index]), index=index))
    groups = as_groups(sensitive_features, n_examples=len(labels), other="y")
    return TrainingData(
        x=inputs,
        y=torch.from_numpy(labels),
        group=torch.from_numpy(groups.codes),
        groups=groups,
    )


class _Trained(Protocol):
    """A mitigation's hyperparameters of the training loop, as given by the user."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    seed: int


@dataclass(frozen=True)
class TrainingParams:
    """Checked hyperparameters of the training loop."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    seed: int


def training_params(mitigation: _Trained, *, owner: str) -> TrainingParams:
    """Check ``epochs``, ``lr``, ``batch_size``, ``weight_decay`` and ``seed`` of ``mitigation``."""
    return TrainingParams(
        epochs=check_int(mitigation.epochs, arg="epochs", owner=owner),
        lr=check_float(mitigation.lr, arg="lr", owner=owner, strict=True),
        batch_size=check_int(mitigation.batch_size, arg="batch_size", owner=owner),
        weight_decay=check_float(mitigation.weight_decay, arg="weight_decay", owner=owner),
        seed=check_int(mitigation.seed, arg="seed", owner=owner, low=0),
    )


@contextlib.contextmanager
def seeded(seed: int, model: nn.Module) -> Iterator[None]:
    """Seed torch inside a fork of its random state and put ``model`` in train mode."""
    device, _ = model_device_and_dtype(model)
    devices = [device.index or 0] if device.type == "cuda" else []
    modes = [(module, module.training) for module in model.modules()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model.train()
        try:
            yield
        finally:
            for module, training in modes:
                module.training = training


def batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index tensors of one shuffled epoch."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def to_device(model: nn.Module, tensor: torch.Tensor) -> torch.Tensor:
    device, dtype = model_device_and_dtype(model)
    tensor = tensor.to(device)
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def positive_margin(logits: torch.Tensor, *, owner: str) -> torch.Tensor:
    """``logit_1 - logit_0`` of a two-class model: the log-odds of the favourable outcome."""
    if logits.dim() != 2 or logits.shape[1] != 2:
        raise DataError(MSG_TWO_LOGITS.format(owner=owner, shape=tuple(logits.shape)))
    return logits[:, 1] - logits[:, 0]


@dataclass(frozen=True)
class Batch:
    """One training batch: its rows, the model's logits and margin, the labels and groups."""

    index: torch.Tensor
    logits: torch.Tensor
    margin: torch.Tensor
    y: torch.Tensor
    group: torch.Tensor


def forward_batch(
    model: nn.Module, data: TrainingData, index: torch.Tensor, *, owner: str
) -> Batch:
    """Run ``model`` on the rows ``index`` of ``data``; labels and groups on its device."""
    logits = model(to_device(model, data.x[index]))
    margin = positive_margin(logits, owner=owner)
    return Batch(
        index=index,
        logits=logits,
        margin=margin,
        y=data.y[index].to(logits.device),
        group=data.group[index].to(logits.device),
    )


def run_epochs(
    model: nn.Module,
    data: TrainingData,
    *,
    params: TrainingParams,
    owner: str,
    step: Callable[[Batch], float],
    end_epoch: Callable[[int, float], None],
) -> None:
    """Call ``step`` on every shuffled batch of each epoch, then ``end_epoch(epoch, loss)``.

    ``step`` takes one optimisation step and returns the batch's mean loss; ``loss`` is the
    epoch's mean over examples, checked to be finite. Shuffling is seeded with ``params.seed``;
    run it inside :func:`seeded`.
    """
    generator = torch.Generator().manual_seed(params.seed)
    for epoch in range(1, params.epochs + 1):
        total = 0.0
        for index in batches(len(data), params.batch_size, generator):
            total += step(forward_batch(model, data, index, owner=owner)) * len(index)
        mean_loss = total / len(data)
        check_loss(mean_loss, owner=owner, epoch=epoch)
        end_epoch(epoch, mean_loss)


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    params = [param for param in model.parameters() if param.requires_grad]
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def check_loss(loss: float, *, owner: str, epoch: int) -> None:
    if not np.isfinite(loss):
        raise ConfigurationError(MSG_DIVERGED.format(owner=owner, loss=loss, epoch=epoch))


def weighted_fit(
    model: nn.Module,
    data: TrainingData,
    weights: FloatArray,
    *,
    params: TrainingParams,
    owner: str,
) -> list[float]:
    """Minimise the weighted cross-entropy ``sum_i w_i CE_i / sum_i w_i`` per batch."""
    w = torch.from_numpy(np.asarray(weights, dtype=np.float64))
    optimizer = make_optimizer(model, lr=params.lr, weight_decay=params.weight_decay)
    history: list[float] = []

    def step(batch: Batch) -> float:
        wb = w[batch.index].to(batch.logits.device, batch.logits.dtype)
        losses = F.cross_entropy(batch.logits, batch.y, reduction="none")
        loss = (wb * losses).sum() / wb.sum().clamp_min(1e-12)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    with seeded(params.seed, model):
        run_epochs(
            model,
            data,
            params=params,
            owner=owner,
            step=step,
            end_epoch=lambda _, loss: history.append(loss),
        )
    return history


def predict_hard(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """Arg-max predictions of ``model`` on ``x`` as int64."""
    logits = compute_logits(model=model, x=x, batch_size=batch_size)
    return logits.argmax(dim=1).numpy().astype(np.int64)


def training_report(model: nn.Module, data: TrainingData, *, criterion: str) -> MitigationReport:
    """Accuracy and gap of the trained ``model``'s predictions on its training data."""
    return report_of(
        criterion=criterion,
        y_true=data.y.numpy(),
        y_pred=predict_hard(model, data.x),
        sensitive_features=data.groups.codes,
    )


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())

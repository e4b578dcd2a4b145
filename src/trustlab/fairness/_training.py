"""What the model-training mitigations share: checked training data, the run of
:func:`trustlab.core.training.train` with a mitigation's hyperparameters, and a batch's logits
and margin."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, check_same_length
from trustlab.core.errors import DataError
from trustlab.core.training import AfterEpochFn, LossFn, Step, StepFn, TrainingHistory, train
from trustlab.core.typing import ArrayLike
from trustlab.fairness._inputs import Groups, as_class_labels, as_groups
from trustlab.fairness.metrics import SensitiveFeatures

MSG_NOT_BINARY = (
    "y must hold the labels 0 and 1 (1 = favourable outcome) for {owner}; found {value} at "
    "index {index}."
)
MSG_TWO_LOGITS = (
    "{owner} needs a two-class model returning logits of shape (batch, 2); got shape {shape}."
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


class _Trainer(Protocol):
    """The training hyperparameters of a model mitigation, checked at its construction."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    seed: int


def train_mitigation(
    mitigation: _Trainer,
    model: nn.Module,
    data: TrainingData,
    *,
    loss: LossFn | None = None,
    step: StepFn | None = None,
    after_epoch: AfterEpochFn | None = None,
    extras: dict[str, torch.Tensor] | None = None,
) -> TrainingHistory:
    """Train ``model`` with the mitigation's hyperparameters and Adam.

    The batches hold ``x``, ``y``, ``group`` (the group codes) and the tensors of ``extras``.
    """
    return train(
        model,
        data={"x": data.x, "y": data.y, "group": data.group, **(extras or {})},
        epochs=mitigation.epochs,
        batch_size=mitigation.batch_size,
        seed=mitigation.seed,
        lr=mitigation.lr,
        weight_decay=mitigation.weight_decay,
        optimizer="adam",
        loss=loss,
        step=step,
        after_epoch=after_epoch,
        owner=type(mitigation).__name__,
    )


def logits_and_margin(step: Step, *, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits on the batch and ``logit_1 - logit_0``, the log-odds of the
    favourable outcome."""
    logits = step.model(step.batch["x"])
    if logits.dim() != 2 or logits.shape[1] != 2:
        raise DataError(MSG_TWO_LOGITS.format(owner=owner, shape=tuple(logits.shape)))
    return logits, logits[:, 1] - logits[:, 0]


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())

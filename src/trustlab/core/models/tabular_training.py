"""Training of tabular classifiers with early stopping on a validation split.

:func:`fit_tabular` trains any classifier (a :class:`~trustlab.core.models.TabularNet` member by
member) through :func:`trustlab.core.training.train`, with AdamW weight decay, optional sample
weights, and :class:`EarlyStopping`, an ``after_epoch`` hook that keeps the weights of the epoch
with the lowest validation loss.

Examples
--------
>>> import numpy as np
>>> from trustlab.core.models import build_model
>>> from trustlab.core.seeding import seed_everything
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(300, 3)).astype(np.float32)
>>> y = (x[:, 0] > 0).astype(np.int64)
>>> seed_everything(0)
>>> net = build_model("tabular", arguments={"in_features": 3, "numeric_features": [0, 1, 2],
...                                         "width": 16, "n_blocks": 1})
>>> report = fit_tabular(net, x=x, y=y, epochs=5, batch_size=64)
>>> len(report.members) == 1 and report.members[0].best_epoch >= 1
True
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import as_input_tensor, compute_logits
from trustlab.core.errors import DataError
from trustlab.core.models.tabular import MemberView, TabularNet
from trustlab.core.params import Integer, Options, Real, Seed, check_param
from trustlab.core.training import Step, train
from trustlab.core.typing import ArrayLike

__all__ = ["EarlyStopping", "MemberReport", "TabularFitReport", "fit_tabular", "split_validation"]

MSG_WEIGHTS = (
    "sample_weight must hold one finite weight >= 0 per row, not all zero; got shape {shape}."
)
MSG_LABELS = "y must hold one class label >= 0 per row of x; got shape {shape} for {n} rows."
MSG_VALIDATION_PAIR = "Pass both x_val and y_val, or neither (to split a validation part off x)."

_OWNER = "fit_tabular"


class EarlyStopping:
    """An ``after_epoch`` hook for :func:`~trustlab.core.training.train`: stop when the
    validation loss has not improved for ``patience`` epochs, and keep the best weights.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained.
    x, y : torch.Tensor
        Validation inputs and labels.
    patience : int
        Epochs without improvement before stopping.
    sample_weight : torch.Tensor, optional
        Weights of the validation rows in the loss.

    Attributes
    ----------
    best_loss : float
        The lowest validation loss seen.
    best_epoch : int
        Its epoch (0 before the first epoch).
    losses : list of float
        The validation loss of every epoch.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        patience: int,
        sample_weight: torch.Tensor | None = None,
    ) -> None:
        self.model = model
        self.x = x
        self.y = y
        self.patience = patience
        self.sample_weight = sample_weight
        self.best_loss = math.inf
        self.best_epoch = 0
        self.losses: list[float] = []
        self._best_state: dict[str, torch.Tensor] | None = None

    def loss(self) -> float:
        """The (weighted) mean cross-entropy of the model on the validation rows."""
        logits = compute_logits(model=self.model, x=self.x, batch_size=4096).double()
        per_row = F.cross_entropy(logits, self.y, reduction="none")
        if self.sample_weight is None:
            return float(per_row.mean())
        weight = self.sample_weight.double()
        return float((per_row * weight).sum() / weight.sum().clamp_min(1e-12))

    def __call__(self, epoch: int, _: float) -> bool:
        value = self.loss()
        self.losses.append(value)
        if value < self.best_loss:
            self.best_loss, self.best_epoch = value, epoch
            self._best_state = copy.deepcopy(self.model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self) -> None:
        """Load the weights of the best epoch into the model."""
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)


@dataclass(frozen=True)
class MemberReport:
    """How one member trained: the epochs run, the best epoch and its validation loss."""

    epochs_run: int
    best_epoch: int
    best_loss: float
    validation_losses: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class TabularFitReport:
    """What :func:`fit_tabular` did, per member, and the validation rows it held out."""

    members: list[MemberReport]
    validation_rows: np.ndarray


def split_validation(
    n_rows: int, *, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of ``range(n_rows)`` into (train, validation) positions."""
    rng = np.random.default_rng(seed)
    validation: list[np.ndarray] = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        rng.shuffle(rows)
        validation.append(rows[: max(1, round(fraction * len(rows)))])
    held = np.sort(np.concatenate(validation))
    mask = np.ones(n_rows, dtype=bool)
    mask[held] = False
    return np.flatnonzero(mask), held


def fit_tabular(
    model: nn.Module,
    *,
    x: ArrayLike,
    y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    x_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
    validation_fraction: float = 0.15,
    epochs: int = 100,
    patience: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    binning: str = "quantile",
    seed: int = 0,
) -> TabularFitReport:
    """Train a classifier in place with AdamW and early stopping on validation loss.

    A :class:`~trustlab.core.models.TabularNet` first gets its bin edges from the training rows
    (:meth:`~trustlab.core.models.TabularNet.set_bin_edges`); each of its members is then
    trained on its own (seed ``seed + k``) and keeps the weights of its best epoch. Any other
    model is trained as one member. Training runs through
    :func:`trustlab.core.training.train` on the model's device.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits of shape (batch, n_classes).
    x : array-like, shape (n_rows, n_features)
        Training inputs.
    y : array-like of int, shape (n_rows,)
        Class labels.
    sample_weight : array-like of float, shape (n_rows,), optional
        Non-negative weights of the rows in the cross-entropy (training and validation).
    x_val, y_val : array-like, optional
        A validation set; without it a stratified ``validation_fraction`` of ``x`` is held out.
    validation_fraction : float, default=0.15
        Share of ``x`` held out when no validation set is given, in (0, 1).
    epochs : int, default=100
        Most epochs per member.
    patience : int, default=16
        Epochs without a better validation loss before a member stops (Gorishniy et al.'s
        setting).
    lr : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-4
        AdamW's decoupled weight decay.
    batch_size : int, default=256
        Rows per step.
    binning : {"quantile", "target"}, default="quantile"
        How a :class:`~trustlab.core.models.TabularNet` places its bin edges: at quantiles,
        or at the splits of a one-feature decision tree on the labels.
    seed : int, default=0
        Seed of the split, the shuffling and dropout.

    Returns
    -------
    TabularFitReport

    Raises
    ------
    DataError
        If the data have the wrong shapes, NaN values or negative weights.
    ConfigurationError
        If a hyperparameter is out of range.
    """
    epochs = check_param(epochs, Integer(low=1), name="epochs", owner=_OWNER)
    patience = check_param(patience, Integer(low=1), name="patience", owner=_OWNER)
    seed = check_param(seed, Seed, name="seed", owner=_OWNER)
    fraction = check_param(
        validation_fraction,
        Real(low=0, high=1, closed="neither"),
        name="validation_fraction",
        owner=_OWNER,
    )
    binning = check_param(binning, Options("quantile", "target"), name="binning", owner=_OWNER)
    inputs = as_input_tensor(x).to(torch.float32)
    labels = _labels(y, inputs.shape[0])
    weights = None if sample_weight is None else _weights(sample_weight, inputs.shape[0])
    if (x_val is None) != (y_val is None):
        raise DataError(MSG_VALIDATION_PAIR)
    if x_val is None or y_val is None:
        fit_rows, held = split_validation(
            inputs.shape[0], y=labels.numpy(), fraction=fraction, seed=seed
        )
        val_x, val_y = inputs[held], labels[held]
        val_w = None if weights is None else weights[held]
        inputs, labels = inputs[fit_rows], labels[fit_rows]
        weights = None if weights is None else weights[fit_rows]
    else:
        held = np.zeros(0, dtype=np.int64)
        val_x = as_input_tensor(x_val).to(torch.float32)
        val_y = _labels(y_val, val_x.shape[0])
        val_w = None
    if isinstance(model, TabularNet):
        model.set_bin_edges(inputs, y=labels.numpy() if binning == "target" else None)
        members: list[nn.Module] = [MemberView(model, k) for k in range(model.n_members)]
        if model.n_members == 1:
            members = [model]
    else:
        members = [model]
    data = {"x": inputs, "y": labels}
    if weights is not None:
        data["weight"] = weights
    reports = []
    for k, member in enumerate(members):
        stopper = EarlyStopping(
            model=member, x=val_x, y=val_y, patience=patience, sample_weight=val_w
        )
        history = train(
            member,
            data=data,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed + k,
            lr=lr,
            weight_decay=weight_decay,
            optimizer="adamw",
            loss=_weighted_loss if weights is not None else None,
            after_epoch=stopper,
            owner=_OWNER,
        )
        stopper.restore()
        reports.append(
            MemberReport(
                epochs_run=history.epochs_run,
                best_epoch=stopper.best_epoch,
                best_loss=stopper.best_loss,
                validation_losses=stopper.losses,
            )
        )
    return TabularFitReport(members=reports, validation_rows=held)


def _weighted_loss(step: Step) -> torch.Tensor:
    logits = step.model(step.batch["x"])
    per_row = F.cross_entropy(logits, step.batch["y"], reduction="none")
    weight = step.batch["weight"]
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


def _labels(y: ArrayLike, n_rows: int) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(y)).reshape(-1)
    if labels.shape[0] != n_rows or labels.is_floating_point() or int(labels.min()) < 0:
        raise DataError(MSG_LABELS.format(shape=tuple(labels.shape), n=n_rows))
    return labels.long()


def _weights(sample_weight: ArrayLike, n_rows: int) -> torch.Tensor:
    weights = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64)).reshape(-1)
    bad = weights.shape[0] != n_rows or not bool(torch.isfinite(weights).all())
    if bad or bool((weights < 0).any()) or float(weights.sum()) <= 0:
        raise DataError(MSG_WEIGHTS.format(shape=tuple(weights.shape)))
    return weights.to(torch.float32)

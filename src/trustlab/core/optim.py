"""The optimiser factory every training loop of trustlab uses."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from trustlab.core.params import Options, Real, check_param

__all__ = ["OPTIMIZERS", "SGD_MOMENTUM", "make_optimizer", "optimizer_constraint"]

#: Optimiser names accepted wherever trustlab trains a model.
OPTIMIZERS = ("adam", "adamw", "sgd")

#: The momentum of ``"sgd"`` unless a caller says otherwise.
SGD_MOMENTUM = 0.9

#: The constraint of an ``optimizer`` parameter.
optimizer_constraint = Options(*OPTIMIZERS)


def make_optimizer(
    name: str,
    params: nn.Module | Iterable[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = SGD_MOMENTUM,
    nesterov: bool = False,
    owner: str = "make_optimizer",
) -> torch.optim.Optimizer:
    """Build the optimiser ``name`` over the trainable parameters of ``params``.

    Parameters
    ----------
    name : {"adam", "adamw", "sgd"}
        ``"adamw"`` decouples the weight decay; ``"sgd"`` uses ``momentum`` (and ``nesterov``).
    params : torch.nn.Module or iterable of Parameter
        A module (its parameters with ``requires_grad``) or the parameters themselves.
    lr : float
        Learning rate, > 0.
    weight_decay : float, default=0.0
        L2 penalty, >= 0.
    momentum : float, default=0.9
        SGD momentum, in [0, 1).
    nesterov : bool, default=False
        Nesterov momentum for SGD.
    owner : str, default="make_optimizer"
        The class or function named in error messages.

    Examples
    --------
    >>> from torch import nn
    >>> type(make_optimizer("sgd", nn.Linear(2, 2), lr=0.1)).__name__
    'SGD'
    """
    name = check_param(name, optimizer_constraint, name="optimizer", owner=owner)
    lr = check_param(lr, Real(low=0, closed="neither"), name="lr", owner=owner)
    weight_decay = check_param(weight_decay, Real(low=0), name="weight_decay", owner=owner)
    momentum = check_param(
        momentum, Real(low=0, high=1, closed="left"), name="momentum", owner=owner
    )
    source = params.parameters() if isinstance(params, nn.Module) else params
    trainable = [param for param in source if param.requires_grad]
    if name == "adam":
        return torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(
        trainable, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )

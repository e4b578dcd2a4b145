"""Training several reference models at once with :func:`torch.func.vmap`.

The models' parameters are stacked along a leading model axis and one vectorised step updates
them all; each model sees exactly the batches :func:`trustlab.core.training.train` would give
it (same order, same last smaller batch), so the vectorised and the one-after-another paths
train the same models up to rounding. The optimiser steps are written out for the stacked
parameters (Adam, AdamW and SGD with momentum, as :func:`trustlab.core.optim.make_optimizer`
configures them) because a model that has run out of batches in a step must be left untouched,
which torch's optimisers cannot mask per model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from trustlab.core.optim import SGD_MOMENTUM
from trustlab.core.seeding import seeded


def _epoch_plan(
    rows: list[torch.Tensor], generators: list[torch.Generator], batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model row order of one epoch, as padded (n_models, n_steps, batch_size) blocks.

    Returns the row indices (padding points at row 0) and their weights (1 real, 0 padding).
    Each model's order is drawn exactly as :func:`trustlab.core.training.train` draws it.
    """
    n_steps = max(math.ceil(len(r) / batch_size) for r in rows)
    index = torch.zeros((len(rows), n_steps * batch_size), dtype=torch.long)
    weight = torch.zeros((len(rows), n_steps * batch_size))
    for i, (model_rows, generator) in enumerate(zip(rows, generators, strict=True)):
        order = model_rows[torch.randperm(len(model_rows), generator=generator)]
        # Batches of the loop: full batches, then one smaller last batch.
        index[i, : len(order)] = order
        weight[i, : len(order)] = 1.0
    shape = (len(rows), n_steps, batch_size)
    return index.reshape(shape), weight.reshape(shape)


class _StackedOptimizer:
    """Adam, AdamW or SGD with momentum over the flat parameters of k models, shape (k, P).

    The update rules are those of ``torch.optim`` (default options), applied only to the models
    whose entry of ``active`` is True in a step, each with its own step count.
    """

    def __init__(self, params: torch.Tensor, *, name: str, lr: float, weight_decay: float) -> None:
        self.name, self.lr, self.weight_decay = name, lr, weight_decay
        self.betas, self.eps = (0.9, 0.999), 1e-8
        self.steps = torch.zeros((params.shape[0], 1))
        self.first = torch.zeros_like(params)
        self.second = torch.zeros_like(params)

    def step(self, param: torch.Tensor, gradient: torch.Tensor, active: torch.Tensor) -> None:
        """Update ``param`` in place; the rows of inactive models keep their values and state."""
        self.steps += active.reshape(-1, 1).float()
        resting = ~active
        saved = None
        if bool(resting.any()):  # a model whose epoch has ended: restore it afterwards
            saved = (
                param[resting].clone(),
                self.first[resting].clone(),
                self.second[resting].clone(),
            )
        if self.name == "sgd":
            self._sgd(param, gradient)
        else:
            self._adam(param, gradient)
        if saved is not None:
            param[resting], self.first[resting], self.second[resting] = saved

    def _sgd(self, param: torch.Tensor, gradient: torch.Tensor) -> None:
        if self.weight_decay:
            gradient = gradient.add(param, alpha=self.weight_decay)
        first_step = self.steps == 1
        self.first.mul_(SGD_MOMENTUM).add_(gradient)
        self.first.copy_(torch.where(first_step, gradient, self.first))
        param.add_(self.first, alpha=-self.lr)

    def _adam(self, param: torch.Tensor, gradient: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        if self.name == "adamw":
            param.mul_(1.0 - self.lr * self.weight_decay)
        elif self.weight_decay:
            gradient = gradient.add(param, alpha=self.weight_decay)
        self.first.mul_(beta1).add_(gradient, alpha=1 - beta1)
        self.second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        steps = self.steps.clamp_min(1)
        step_size = self.lr / (1 - beta1**steps)
        denominator = (self.second.sqrt() / torch.sqrt(1 - beta2**steps)).add_(self.eps)
        param.sub_(self.first.div(denominator).mul_(step_size))


def train_vectorised(
    models: list[nn.Module],
    *,
    x: torch.Tensor,
    y: torch.Tensor,
    rows: list[torch.Tensor],
    seeds: list[int],
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    optimizer: str,
    progress: Callable[[int, int], None] | None,
) -> None:
    stacked, _ = stack_module_state(models)
    names = list(stacked)
    n_models = len(models)
    # All parameters of all models live in one (n_models, n_parameters) tensor, so that one
    # optimiser update per step serves every layer; each layer's stacked parameter is a leaf
    # tensor sharing its storage, which the update changes in place.
    flat = torch.cat([stacked[name].detach().reshape(n_models, -1) for name in names], dim=1)
    params: dict[str, torch.Tensor] = {}
    start = 0
    for name in names:
        shape = stacked[name].shape[1:]
        size = int(stacked[name][0].numel())
        params[name] = flat[:, start : start + size].view(n_models, *shape)
        params[name].requires_grad_(True)
        start += size
    leaves = [params[name] for name in names]
    skeleton = copy.deepcopy(models[0]).to("meta")

    def batch_loss(
        p: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor
    ) -> torch.Tensor:
        logits = functional_call(skeleton, p, (xb,))
        losses = F.cross_entropy(logits, yb, reduction="none")
        return (losses * wb).sum() / wb.sum().clamp_min(1.0)

    # The models are independent, so the gradient of the sum of their losses with respect to
    # the stacked parameters is every model's own gradient.
    losses = vmap(batch_loss, randomness="different")
    stepper = _StackedOptimizer(flat, name=optimizer, lr=lr, weight_decay=weight_decay)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    with seeded(seeds[0]):
        for epoch in range(1, epochs + 1):
            index, weight = _epoch_plan(rows, generators, batch_size)
            for s in range(index.shape[1]):
                batch_index, batch_weight = index[:, s], weight[:, s]
                total = losses(params, x[batch_index], y[batch_index], batch_weight)
                gradients = torch.autograd.grad(total.sum(), leaves)
                gradient = torch.cat([g.reshape(n_models, -1) for g in gradients], dim=1)
                with torch.no_grad():
                    stepper.step(flat, gradient, batch_weight.sum(dim=1) > 0)
            if progress is not None:
                progress(epoch, epochs)
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, parameter in model.named_parameters():
                parameter.copy_(params[name][i])

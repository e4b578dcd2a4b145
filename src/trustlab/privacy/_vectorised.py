"""Training several reference models at once.

The models' parameters are stacked along a leading model axis and one step updates them all;
each model sees exactly the batches :func:`trustlab.core.training.train` would give it (same
order, same last smaller batch), so the vectorised and the one-after-another paths train the
same models up to rounding.

Two ways to compute the stacked gradients:

- plain MLPs (:class:`~trustlab.core.models.mlp.MLP` without dropout), the common case of
  tabular reference models, run a direct batched path: ``torch.baddbmm`` over the stacked
  ``(k, out, in)`` weights forward, the gradients of cross-entropy written out backward
  (softmax minus one-hot, then one ``bmm`` per weight), with no autograd bookkeeping;
- every other architecture without buffers runs :func:`torch.func.vmap` over
  :func:`torch.func.functional_call` and autograd.

Both update the parameters with torch's own optimiser, configured as
:func:`trustlab.core.optim.make_optimizer` configures it but in its fused form: one kernel
over all parameters of all k models. Torch's optimisers are elementwise, so each model's update
is the one its own optimiser would make, as long as the models share a step count. Models
that take the same number of steps per epoch therefore form a group, one range of the stacked
tensors with its own ``Parameter`` objects (sharing storage) and state. A group that has run
out of batches in a step has its gradients cleared for that step, which torch's optimisers
skip, so it stays untouched. The data stay on the models' device and the loop never waits
for it within an epoch: the divergence check reads the losses once per epoch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from trustlab.core.errors import ConfigurationError
from trustlab.core.models.mlp import MLP
from trustlab.core.optim import SGD_MOMENTUM
from trustlab.core.seeding import seeded

MSG_DIVERGED = (
    "The training loss of reference model {model} became {loss} in epoch {epoch}; lower the "
    "learning rate (lr={lr})."
)


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


def _fused_optimizer(
    parameters: list[nn.Parameter], *, name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """The optimiser of :func:`~trustlab.core.optim.make_optimizer`, fused where torch can."""
    fused = parameters[0].device.type in ("cpu", "cuda")
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=fused)
    return torch.optim.SGD(
        parameters, lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay, fused=fused
    )


class _Stacked:
    """The trainable parameters of k models, stacked per name to shape (k, *shape).

    ``values[name][i]`` and ``grads[name][i]`` are model ``i``'s parameter and gradient. The
    models come in ``groups``, contiguous ranges of models that take the same number of steps
    per epoch, hence rest in the same steps; the optimiser holds one ``Parameter`` per group
    and name, sharing storage with ``values[name][start:stop]``, whose ``.grad`` shares
    storage with ``grads``. Torch's optimisers are elementwise, so each model's update is the
    one its own optimiser would make; a group's step count is its models' step count.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        *,
        groups: list[tuple[int, int]],
        optimizer: str,
        lr: float,
        weight_decay: float,
    ) -> None:
        per_model = [dict(model.named_parameters()) for model in models]
        self.names = [name for name, p in per_model[0].items() if p.requires_grad]
        self.values = {
            name: torch.stack([params[name].detach() for params in per_model]).contiguous()
            for name in self.names
        }
        self.grads = {name: torch.zeros_like(value) for name, value in self.values.items()}
        self.frozen = {
            name: torch.stack([params[name].detach() for params in per_model])
            for name in per_model[0]
            if name not in self.values
        }
        self.views: list[list[nn.Parameter]] = []
        for start, stop in groups:
            row = []
            for name in self.names:
                view = nn.Parameter(self.values[name][start:stop])
                view.grad = self.grads[name][start:stop]
                row.append(view)
            self.views.append(row)
        self.groups = groups
        self.optimizer = _fused_optimizer(
            [view for row in self.views for view in row],
            name=optimizer,
            lr=lr,
            weight_decay=weight_decay,
        )

    def step(self, active: list[bool]) -> None:
        """One optimiser step of the groups whose entry of ``active`` is True."""
        resting = [g for g, on in enumerate(active) if not on]
        for g in resting:
            for view in self.views[g]:
                view.grad = None
        self.optimizer.step()
        for g in resting:
            start, stop = self.groups[g]
            for view, name in zip(self.views[g], self.names, strict=True):
                view.grad = self.grads[name][start:stop]

    def copy_to(self, models: Sequence[nn.Module]) -> None:
        with torch.no_grad():
            for i, model in enumerate(models):
                params = dict(model.named_parameters())
                for name in self.names:
                    params[name].copy_(self.values[name][i])


def direct_layers(model: nn.Module) -> list[tuple[str, str]] | None:
    """The (weight, bias) names of a model the direct batched path trains, else None.

    The path covers :class:`~trustlab.core.models.mlp.MLP` itself (not a subclass, whose
    forward may differ) without dropout, with every parameter trainable.
    """
    if type(model) is not MLP or model.dropout_p > 0:
        return None
    if not all(p.requires_grad for p in model.parameters()):
        return None
    layers = [(f"hidden.{i}.weight", f"hidden.{i}.bias") for i in range(len(model.hidden))]
    return [*layers, ("head.weight", "head.bias")]


def _mlp_step(
    stacked: _Stacked,
    layers: list[tuple[str, str]],
    xb: torch.Tensor,
    yb: torch.Tensor,
    wb: torch.Tensor,
) -> torch.Tensor:
    """Write every model's gradient of its batch's mean cross-entropy; return the (k,) losses.

    ``xb`` (k, B, in), ``yb`` (k, B), ``wb`` (k, B): the weight of each row in its model's
    mean (1 / batch size for a real row, 0 for padding).
    """
    inputs = [xb]
    z = xb
    last = len(layers) - 1
    for number, (weight, bias) in enumerate(layers):
        w, b = stacked.values[weight], stacked.values[bias]
        z = torch.baddbmm(b.unsqueeze(1), inputs[-1], w.transpose(1, 2))
        if number < last:
            inputs.append(z.relu_())
    log_p = torch.log_softmax(z, dim=2)
    picked = yb.unsqueeze(2)
    losses = -(log_p.gather(2, picked).squeeze(2) * wb).sum(dim=1)
    # d(mean cross-entropy) / d(logits) = (softmax - one-hot) * row weight.
    delta = log_p.exp_()
    delta.scatter_add_(2, picked, torch.full_like(picked, -1.0, dtype=delta.dtype))
    delta.mul_(wb.unsqueeze(2))
    for number in range(last, -1, -1):
        weight, bias = layers[number]
        torch.bmm(delta.transpose(1, 2), inputs[number], out=stacked.grads[weight])
        torch.sum(delta, dim=1, out=stacked.grads[bias])
        if number > 0:
            # Back through the layer, then through the ReLU (gradient where its output > 0).
            delta = torch.ops.aten.threshold_backward(
                torch.bmm(delta, stacked.values[weight]), inputs[number], 0
            )
    return losses


def _vmap_step(
    stacked: _Stacked, skeleton: nn.Module, xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor
) -> torch.Tensor:
    """The same as :func:`_mlp_step` for any buffer-free architecture, through vmap."""
    leaves = {name: value.detach().requires_grad_(True) for name, value in stacked.values.items()}

    def batch_loss(
        p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        logits = functional_call(skeleton, p, (x,))
        return (F.cross_entropy(logits, y, reduction="none") * w).sum()

    # The models are independent, so the gradient of the sum of their losses with respect to
    # the stacked parameters is every model's own gradient.
    losses = vmap(batch_loss, randomness="different")({**stacked.frozen, **leaves}, xb, yb, wb)
    gradients = torch.autograd.grad(losses.sum(), list(leaves.values()))
    for name, gradient in zip(leaves, gradients, strict=True):
        stacked.grads[name].copy_(gradient)
    return losses.detach()


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
    direct: bool = True,
) -> None:
    """Train ``models`` (on one device, without buffers) in place, all at once.

    Model ``i`` trains on ``x[rows[i]]``, ``y[rows[i]]`` with the mini-batch order of
    :func:`trustlab.core.training.train` with seed ``seeds[i]``. ``x`` and ``y`` may sit on
    any device; the batches are moved to the models' device. ``direct=False`` takes the vmap
    path even for a plain MLP (to compare the two).
    """
    first = next(models[0].parameters())
    device, dtype = first.device, first.dtype
    # Models that take the same number of steps per epoch rest in the same steps: put them
    # side by side, so that each such group is one range of the stacked tensors.
    n_steps = [math.ceil(len(model_rows) / batch_size) for model_rows in rows]
    order = sorted(range(len(models)), key=lambda i: n_steps[i])
    bounds = [0, *(j for j in range(1, len(order)) if n_steps[order[j]] != n_steps[order[j - 1]])]
    groups = list(zip(bounds, [*bounds[1:], len(order)], strict=True))
    group_steps = [n_steps[order[start]] for start, _ in groups]
    ordered = [models[i] for i in order]
    stacked = _Stacked(
        ordered, groups=groups, optimizer=optimizer, lr=lr, weight_decay=weight_decay
    )
    layers = direct_layers(models[0]) if direct else None
    skeleton = copy.deepcopy(models[0]).to("meta") if layers is None else None
    generators = [torch.Generator().manual_seed(seeds[i]) for i in order]
    ordered_rows = [rows[i] for i in order]
    x, y = x.to(device), y.to(device)
    if x.is_floating_point():
        x = x.to(dtype)
    with seeded(seeds[0], device=device), torch.no_grad():
        for epoch in range(1, epochs + 1):
            index, weight = _epoch_plan(ordered_rows, generators, batch_size)
            # A row's weight in its model's mean: 1 / the size of its (possibly last) batch.
            scaled = weight / weight.sum(dim=2, keepdim=True).clamp_min(1.0)
            index, scaled = index.to(device), scaled.to(device, dtype)
            epoch_x, epoch_y = x[index], y[index]  # one gather per epoch
            total = torch.zeros(len(models), device=device, dtype=dtype)
            for s in range(index.shape[1]):
                xb, yb, wb = epoch_x[:, s], epoch_y[:, s], scaled[:, s]
                if layers is not None:
                    total += _mlp_step(stacked, layers, xb, yb, wb)
                else:
                    with torch.enable_grad():
                        total += _vmap_step(stacked, skeleton, xb, yb, wb)  # type: ignore[arg-type]
                stacked.step([s < steps for steps in group_steps])
            _check_finite(total, order=order, epoch=epoch, lr=lr)
            if progress is not None:
                progress(epoch, epochs)
    stacked.copy_to(ordered)


def _check_finite(total: torch.Tensor, *, order: list[int], epoch: int, lr: float) -> None:
    """Refuse a run whose loss became NaN or infinite, as the training loop does."""
    finite = torch.isfinite(total)
    if not bool(finite.all()):
        position = int((~finite).nonzero()[0, 0])
        raise ConfigurationError(
            MSG_DIVERGED.format(
                model=order[position], loss=float(total[position]), epoch=epoch, lr=lr
            )
        )

"""Auto-PGD (Croce & Hein, 2020): APGD-CE, APGD-DLR and the targeted APGD-T.

The three attacks share one optimiser, :class:`_APGD`, and differ only in the loss they ascend
(cross-entropy, the Difference of Logits Ratio, or its targeted version run once per target
class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from trustlab.core.params import Constraint, validate_params
from trustlab.robustness._counting import CountingModel
from trustlab.robustness._params import AT_LEAST_ONE, UNIT_OPEN, store_params
from trustlab.robustness._random import ExampleRandom
from trustlab.robustness._working import WorkingSet
from trustlab.robustness.base import Attack
from trustlab.robustness.losses import check_n_classes, dlr_loss, targeted_dlr_loss
from trustlab.robustness.norms import (
    Norm,
    expand_rows,
    flat,
    linf_box,
    normalize,
    project_to_threat,
)
from trustlab.robustness.registry import register_attack

__all__ = ["APGDCE", "APGDDLR", "APGDT"]

#: Momentum of the update (alpha in the paper).
MOMENTUM = 0.75
#: The first step size is STEP_FACTOR * eps.
STEP_FACTOR = 2.0
#: The checkpoints: the first after P1 * steps iterations; then each interval shrinks by
#: DECREASE * steps down to MIN_INTERVAL * steps.
P1, DECREASE, MIN_INTERVAL = 0.22, 0.03, 0.06


def checkpoints(steps: int) -> list[int]:
    """The iterations after which APGD may halve its step size.

    The paper's checkpoints are ``ceil(p_j * steps)`` with ``p_0 = 0``, ``p_1 = 0.22`` and
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``. As in the reference implementation,
    the intervals are computed in whole iterations: the first is ``max(int(0.22 steps), 1)``
    long and each next one is ``max(int(0.03 steps), 1)`` shorter, but never shorter than
    ``max(int(0.06 steps), 1)``. For 100 steps both give 22, 41, 57, 70, 80, 87, 93, 99.

    >>> checkpoints(100)[:8]
    [22, 41, 57, 70, 80, 87, 93, 99]
    """
    interval = max(int(P1 * steps), 1)
    decrease = max(int(DECREASE * steps), 1)
    shortest = max(int(MIN_INTERVAL * steps), 1)
    marks: list[int] = []
    position = 0
    while position + interval <= steps:
        position += interval
        marks.append(position)
        interval = max(interval - decrease, shortest)
    return marks


@dataclass
class _Work:
    """The per-example state of one APGD run, for the examples still being attacked."""

    rows: torch.Tensor  # positions in the run's result buffers
    x: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor | None
    low: torch.Tensor
    high: torch.Tensor
    x_adv: torch.Tensor
    x_prev: torch.Tensor
    grad: torch.Tensor
    x_best: torch.Tensor
    grad_best: torch.Tensor
    loss_best: torch.Tensor
    loss_prev: torch.Tensor
    loss_best_at_check: torch.Tensor
    step_size: torch.Tensor
    increases: torch.Tensor
    reduced_at_check: torch.Tensor

    def keep(self, mask: torch.Tensor) -> _Work:
        kept: dict[str, Any] = {
            name: (None if value is None else value[mask]) for name, value in vars(self).items()
        }
        return _Work(**kept)


class _APGD(Attack):
    """The APGD optimiser shared by APGD-CE, APGD-DLR and APGD-T."""

    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)
    targeted: ClassVar[bool] = False
    loss_name: ClassVar[str]
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "steps": AT_LEAST_ONE,
        "restarts": AT_LEAST_ONE,
        "rho": UNIT_OPEN,
        "eot_iter": AT_LEAST_ONE,
    }

    eps: float
    steps: int
    restarts: int
    rho: float
    eot_iter: int

    def __init__(
        self,
        *,
        norm: Norm | str = "Linf",
        eps: float,
        steps: int = 100,
        restarts: int = 1,
        rho: float = 0.75,
        eot_iter: int = 1,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            norm=norm,
            eps=eps,
            steps=steps,
            restarts=restarts,
            rho=rho,
            eot_iter=eot_iter,
            bounds=bounds,
            seed=seed,
        )
        validate_params(self)

    # -- the loss ----------------------------------------------------------------------------

    def _loss(
        self, logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        if self.loss_name == "ce":
            return F.cross_entropy(logits, y, reduction="none")
        if self.loss_name == "dlr":
            return dlr_loss(logits, y)
        assert targets is not None
        return targeted_dlr_loss(logits, y, targets)

    def _gradient(
        self, model: CountingModel, work: _Work, active: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (of the last EOT draw), loss and EOT-averaged gradient at ``work.x_adv``;
        the passes of the ``active`` rows are counted."""
        x_adv = work.x_adv.detach().requires_grad_(True)
        grad = torch.zeros_like(x_adv)
        for _ in range(self.eot_iter):
            with model.only(active):
                logits = model(x_adv)
            loss = self._loss(logits, work.y, work.targets)
            grad += torch.autograd.grad(loss.sum(), x_adv)[0]
        if self.eot_iter > 1:
            grad /= self.eot_iter
        return logits.detach(), loss.detach(), grad

    # -- one run -----------------------------------------------------------------------------

    def _start(self, x: torch.Tensor, keys: torch.Tensor, step: int) -> torch.Tensor:
        """The reference's random start: a random direction scaled to norm ``eps``."""
        rng = ExampleRandom(seed=self.seed)
        shape = tuple(x.shape[1:])
        if self.norm is Norm.LINF:
            u = rng.uniform(indices=keys, step=step, shape=shape, device=x.device, dtype=x.dtype)
            direction = 2 * u - 1
            size = flat(direction).abs().amax(dim=1)
        else:
            direction = rng.normal(
                indices=keys, step=step, shape=shape, device=x.device, dtype=x.dtype
            )
            size = flat(direction).norm(dim=1)
        scale = self.eps / (size + 1e-12)
        start = x + direction * expand_rows(scale, x)
        return start.clamp_(self.bounds[0], self.bounds[1])

    def _step(self, work: _Work, momentum: float) -> torch.Tensor:
        """The APGD update: a projected step, then momentum, then projection again."""
        direction = normalize(work.grad, self.norm)
        shape = (-1, *([1] * (work.x.dim() - 1)))
        z = work.x_adv + work.step_size.reshape(shape) * direction
        z = self._project(z, work)
        if momentum == 1.0:
            return z
        moved = (
            work.x_adv + momentum * (z - work.x_adv) + (1 - momentum) * (work.x_adv - work.x_prev)
        )
        return self._project(moved, work)

    def _project(self, x_adv: torch.Tensor, work: _Work) -> torch.Tensor:
        if self.norm is Norm.LINF:
            return torch.clamp(x_adv, min=work.low, max=work.high)
        return project_to_threat(x_adv, work.x, norm=self.norm, eps=self.eps, bounds=self.bounds)

    def _run(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        keys: torch.Tensor,
        step: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One APGD run on every example given; returns ``(fooled, x_found)``.

        ``fooled[i]`` says whether some iterate of example ``i`` was misclassified; then
        ``x_found[i]`` is the first such iterate (and ``x[i]`` otherwise). An example leaves
        the working batch once it is fooled (at the working set's next check, see
        :mod:`trustlab.robustness._working`): the others' trajectories do not depend on it, so
        this changes no result and saves its passes.
        """
        n = x.shape[0]
        ws = WorkingSet(n, device=x.device)
        x, y, keys = ws.gather(x), ws.gather(y), ws.gather(keys)
        targets = None if targets is None else ws.gather(targets)
        size = x.shape[0]
        # The result buffers, one row per row of the first batch, and the batch's own results.
        fooled = torch.zeros(size, dtype=torch.bool, device=x.device)
        out = x.clone()
        hit_once = fooled.clone()
        found = x.clone()
        if self.norm is Norm.LINF:
            low, high = linf_box(x, eps=self.eps, bounds=self.bounds)
        else:
            low, high = x, x
        x_adv = self._start(x, keys, step)
        work = _Work(
            rows=ws.rows,
            x=x,
            y=y,
            targets=targets,
            low=low,
            high=high,
            x_adv=x_adv,
            x_prev=x_adv,
            grad=torch.zeros_like(x),
            x_best=x_adv,
            grad_best=torch.zeros_like(x),
            loss_best=torch.zeros(size, device=x.device, dtype=x.dtype),
            loss_prev=torch.zeros(size, device=x.device, dtype=x.dtype),
            loss_best_at_check=torch.zeros(size, device=x.device, dtype=x.dtype),
            step_size=torch.full((size,), STEP_FACTOR * self.eps, device=x.device, dtype=x.dtype),
            increases=torch.zeros(size, device=x.device, dtype=torch.int64),
            reduced_at_check=torch.ones(size, device=x.device, dtype=torch.bool),
        )
        logits, loss, grad = self._gradient(model, work, ws.counted)
        work.grad, work.grad_best = grad, grad.clone()
        work.loss_best, work.loss_prev, work.loss_best_at_check = loss.clone(), loss, loss.clone()
        marks = set(checkpoints(self.steps))
        last_mark = 0
        for i in range(self.steps + 1):
            if i > 0:
                # The iterate x^(i) was just evaluated: track the best loss and the increases.
                improved = loss > work.loss_best
                work.x_best = torch.where(expand_rows(improved, work.x), work.x_adv, work.x_best)
                work.grad_best = torch.where(expand_rows(improved, work.x), grad, work.grad_best)
                work.loss_best = torch.where(improved, loss, work.loss_best)
                work.increases += (loss > work.loss_prev).to(torch.int64)
                work.loss_prev = loss
                work.grad = grad
            with torch.no_grad():
                hit = ws.retire(logits.argmax(dim=1) != work.y)
                hit_once |= hit
                found = torch.where(expand_rows(hit, found), work.x_adv, found)
                keep = ws.check((out, found), (fooled, hit_once))
                if keep is not None:
                    work, found, hit_once = work.keep(keep), found[keep], hit_once[keep]
                if ws.empty or i == self.steps:
                    break
                if i in marks:
                    self._checkpoint(work, interval=i - last_mark)
                    last_mark = i
                x_next = self._step(work, 1.0 if i == 0 else MOMENTUM)
                work.x_prev, work.x_adv = work.x_adv, x_next
            logits, loss, grad = self._gradient(model, work, ws.counted)
        ws.scatter(out, found)
        ws.scatter(fooled, hit_once)
        return fooled[:n], out[:n]

    def _checkpoint(self, work: _Work, *, interval: int) -> None:
        """Halve the step where progress stalled and restart from the best point.

        Condition 1: the loss increased in at most ``rho`` of the interval's steps. Condition 2:
        the step was not halved at the previous checkpoint and the best loss has not improved
        since then.
        """
        oscillating = work.increases.to(work.loss_best.dtype) <= interval * self.rho
        stalled = ~work.reduced_at_check & (work.loss_best_at_check >= work.loss_best)
        reduce = oscillating | stalled
        work.reduced_at_check = reduce
        work.loss_best_at_check = work.loss_best.clone()
        work.increases = torch.zeros_like(work.increases)
        work.step_size = torch.where(reduce, work.step_size / 2, work.step_size)
        rows = expand_rows(reduce, work.x)
        work.x_adv = torch.where(rows, work.x_best, work.x_adv)
        work.grad = torch.where(rows, work.grad_best, work.grad)


class _UntargetedAPGD(_APGD):
    """APGD with restarts on an untargeted loss; each restart attacks the examples still
    classified correctly."""

    def _perturb(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        indices: torch.Tensor,
        clean_correct: torch.Tensor,
    ) -> torch.Tensor:
        if self.loss_name == "dlr":
            with torch.no_grad():
                n_classes = int(model(x[:1]).shape[1])
            check_n_classes(n_classes, needed=3, owner=type(self).__name__, loss="DLR")
        out = x.clone()
        robust = clean_correct.clone()
        for restart in range(self.restarts):
            rows = torch.nonzero(robust).squeeze(1)
            if rows.numel() == 0:
                break
            fooled, found = self._run(
                model=model,
                x=x[rows],
                y=y[rows],
                targets=None,
                keys=indices[rows],
                step=restart,
            )
            out[rows[fooled]] = found[fooled]
            robust[rows[fooled]] = False
        return out


@register_attack
class APGDCE(_UntargetedAPGD):
    """Auto-PGD on the cross-entropy loss (APGD-CE), the first attack of AutoAttack.

    Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020. PGD with momentum (0.75) whose step size starts at
    ``2 * eps`` and is halved at checkpoints (after 22 %, 41 %, 57 %, ... of the iterations)
    where the loss rose in at most ``rho`` of the interval's steps, or where the best loss did
    not improve since the previous checkpoint and the step was not halved there; a halving
    restarts from the best point found.

    Threat model: white box, untargeted, ``||x_adv - x|| <= eps`` (Linf or L2), ``x_adv``
    inside ``bounds``.

    Parameters
    ----------
    norm : {"Linf", "L2"}, default="Linf"
    eps : float
        The radius of the threat model, > 0.
    steps : int, default=100
        Iterations per restart (the reference's ``n_iter``).
    restarts : int, default=1
        Runs from different random starts; each attacks only the examples still correct.
    rho : float, default=0.75
        The share of increasing steps below which the step size is halved.
    eot_iter : int, default=1
        Gradients averaged per step (Expectation over Transformation), for randomised models.
    bounds : (float, float), default=(0.0, 1.0)
    seed : int, default=0
        Seed of the random starts, keyed by example (results do not depend on batch size).

    Notes
    -----
    Departures from the reference implementation (``fra31/auto-attack``), none of which changes
    which examples are broken:

    - an example leaves the working batch at its first misclassified iterate, which is the one
      returned (the reference keeps attacking it and returns the last misclassified iterate);
    - the first oscillation check counts the increase from the starting point, as in the paper
      (the reference compares the first iterate with an unfilled buffer of zeros);
    - random starts are drawn per example from the seed, so they do not depend on the batch.

    Shapes
    ------
    ``x``: (n, ...) in ``bounds``; ``y``: (n,); the model maps (b, ...) to logits (b, k).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.rand(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> result = APGDCE(eps=0.05, steps=10).generate(model=model, x=x, y=y)
    >>> result.robust_accuracy <= result.clean_accuracy
    True
    """

    name: ClassVar[str] = "apgd-ce"
    loss_name: ClassVar[str] = "ce"


@register_attack
class APGDDLR(_UntargetedAPGD):
    """Auto-PGD on the Difference of Logits Ratio loss (APGD-DLR).

    Croce and Hein (ICML 2020). The optimiser of :class:`APGDCE` on the loss
    ``-(z_y - max_{i != y} z_i) / (z_(1) - z_(3))``, which does not change when the logits are
    shifted or rescaled and so resists the gradient masking of an over-confident model. Needs
    at least 3 classes. Same parameters and departures as :class:`APGDCE`.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.rand(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> APGDDLR(eps=0.05, steps=10).generate(model=model, x=x, y=y).n_examples
    6
    """

    name: ClassVar[str] = "apgd-dlr"
    loss_name: ClassVar[str] = "dlr"


@register_attack
class APGDT(_APGD):
    """Targeted Auto-PGD on the targeted DLR loss (APGD-T), the second attack of AutoAttack.

    Croce and Hein (ICML 2020). For each of the ``n_targets`` classes ranked 2nd, 3rd, ... by
    the clean logits, run the optimiser of :class:`APGDCE` on the targeted loss
    ``-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)`` on the examples no earlier target has
    broken. The attack is untargeted (it succeeds when the prediction leaves ``y``) and picks
    its own targets: ``AttackResult.targets`` holds, per example, the target of the run that
    broke it, else the last target tried (the class ranked second for examples misclassified
    when clean, which are not attacked). Needs at least 4 classes; with fewer than
    ``n_targets + 1`` classes every other class is tried.

    Parameters
    ----------
    n_targets : int, default=9
        Target classes tried per example (AutoAttack's ``standard`` version uses 9).
    norm, eps, steps, restarts, rho, eot_iter, bounds, seed
        As for :class:`APGDCE`; ``restarts`` are per target class.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5))
    >>> x, y = torch.rand(4, 4), torch.tensor([0, 1, 2, 3])
    >>> result = APGDT(eps=0.05, steps=5, n_targets=2).generate(model=model, x=x, y=y)
    >>> result.targets.shape
    torch.Size([4])
    """

    name: ClassVar[str] = "apgd-t"
    loss_name: ClassVar[str] = "dlr-targeted"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"n_targets": AT_LEAST_ONE}

    def __init__(
        self,
        *,
        norm: Norm | str = "Linf",
        eps: float,
        steps: int = 100,
        n_targets: int = 9,
        restarts: int = 1,
        rho: float = 0.75,
        eot_iter: int = 1,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        self.n_targets = n_targets
        super().__init__(
            norm=norm,
            eps=eps,
            steps=steps,
            restarts=restarts,
            rho=rho,
            eot_iter=eot_iter,
            bounds=bounds,
            seed=seed,
        )

    def _perturb(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        indices: torch.Tensor,
        clean_correct: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            ranking = model(x).argsort(dim=1, descending=True)
        n_classes = int(ranking.shape[1])
        check_n_classes(n_classes, needed=4, owner=type(self).__name__, loss="targeted DLR")
        n_targets = min(self.n_targets, n_classes - 1)
        out = x.clone()
        robust = clean_correct.clone()
        # Rank 1 is the true class of a correctly classified example; its targets are the
        # classes ranked 2 .. n_targets + 1.
        chosen = ranking[:, 1].clone()
        for rank in range(1, n_targets + 1):
            for restart in range(self.restarts):
                rows = torch.nonzero(robust).squeeze(1)
                if rows.numel() == 0:
                    return out, chosen
                target = ranking[rows, rank]
                chosen[rows] = target
                fooled, found = self._run(
                    model=model,
                    x=x[rows],
                    y=y[rows],
                    targets=target,
                    keys=indices[rows],
                    step=(rank - 1) * self.restarts + restart,
                )
                out[rows[fooled]] = found[fooled]
                robust[rows[fooled]] = False
        return out, chosen

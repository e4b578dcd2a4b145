"""Projected gradient descent (Madry et al., 2018), untargeted and targeted."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from trustlab.core.params import Boolean, Constraint, Optional, Options, validate_params
from trustlab.robustness._counting import CountingModel
from trustlab.robustness._params import AT_LEAST_ONE, POSITIVE, store_params
from trustlab.robustness._random import ExampleRandom, random_start
from trustlab.robustness._working import WorkingSet
from trustlab.robustness.base import Attack
from trustlab.robustness.losses import margin_loss
from trustlab.robustness.norms import Norm, expand_rows, linf_box, normalize, project_to_threat
from trustlab.robustness.registry import register_attack

__all__ = ["PGD", "TargetedPGD"]

LOSSES = ("ce", "margin")

#: Madry et al.'s rule of thumb for the step size: 2.5 * eps / steps, so that a walk of
#: ``steps`` steps can cross the ball and come back.
STEP_SIZE_FACTOR = 2.5


@register_attack
class PGD(Attack):
    """Projected gradient descent on the cross-entropy (or margin) loss.

    Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models Resistant to
    Adversarial Attacks", ICLR 2018. From a random point of the ball (``random_start``), take
    ``steps`` steps of size ``step_size`` along the steepest-ascent direction of the loss for
    the threat model (the gradient's sign for Linf, the normalised gradient for L2 and L1) and
    project back onto the ball and the valid range after each step.

    Threat model: white box (gradients), untargeted, ``||x_adv - x|| <= eps`` in the Linf, L2
    or L1 norm, ``x_adv`` inside ``bounds``.

    Parameters
    ----------
    norm : {"Linf", "L2", "L1"}, default="Linf"
    eps : float
        The radius of the threat model, > 0.
    steps : int, default=10
        Gradient steps per restart (torchattacks' default).
    step_size : float, optional
        Defaults to ``2.5 * eps / steps`` (Madry et al.'s rule; torchattacks defaults to a fixed
        2/255 and ART to ``eps / 3`` — pass theirs to compare).
    random_start : bool, default=True
        Start from a uniform random point of the ball (Madry et al.) instead of ``x``.
    restarts : int, default=1
        Independent runs from different random starts. Per example, the result is the first
        run's final iterate that is misclassified, else the final iterate of highest loss; this
        costs one extra forward pass per restart on the examples it attacks.
    loss : {"ce", "margin"}, default="ce"
        Cross-entropy, or the margin ``max_{i != y} z_i - z_y`` of Carlini & Wagner.
    early_stop : bool, default=False
        Evaluation mode. An example misclassified at the clean point or at any iterate stops
        being attacked: it is taken out of the working batch, so it costs no more passes, and
        the iterate that fooled the model is returned. An example counts as broken if any
        iterate was misclassified, so the robust accuracy is at most that of the plain attack,
        which returns the final iterate (the plain attack is what adversarial training uses).
    bounds : (float, float), default=(0.0, 1.0)
        The valid input range.
    seed : int, default=0
        Seed of the random starts, keyed by example (results do not depend on batch size).

    Shapes
    ------
    ``x``: (n, ...) in ``bounds``; ``y``: (n,); the model maps (b, ...) to logits (b, k).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])
    >>> result = PGD(eps=0.1, steps=5).generate(model=model, x=x, y=y)
    >>> bool((result.x_adv - x).abs().max() <= 0.1 + 1e-6)
    True
    """

    name: ClassVar[str] = "pgd"
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2, Norm.L1)
    targeted: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "steps": AT_LEAST_ONE,
        "step_size": Optional(POSITIVE),
        "random_start": Boolean(),
        "restarts": AT_LEAST_ONE,
        "loss": Options(*LOSSES),
        "early_stop": Boolean(),
    }

    eps: float
    steps: int
    step_size: float
    random_start: bool
    restarts: int
    loss: str
    early_stop: bool

    def __init__(
        self,
        *,
        norm: Norm | str = "Linf",
        eps: float,
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        loss: str = "ce",
        early_stop: bool = False,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            norm=norm,
            eps=eps,
            steps=steps,
            step_size=step_size,
            random_start=random_start,
            restarts=restarts,
            loss=loss,
            early_stop=early_stop,
            bounds=bounds,
            seed=seed,
        )
        validate_params(self)
        if self.step_size is None:
            self.step_size = STEP_SIZE_FACTOR * self.eps / self.steps

    # The objective the attack ascends, and what counts as success; targeted subclasses
    # override both.
    def _objective(
        self, logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        if self.loss == "ce":
            return F.cross_entropy(logits, y, reduction="none")
        return margin_loss(logits, y)

    def _fooled(
        self, logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        return logits.argmax(dim=1) != y

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
        x_out = x.clone()
        # Examples settled for good: in evaluation mode, those already fooled at the clean
        # point (untargeted) and, across restarts, those fooled by an earlier run.
        if self.early_stop and not self.targeted:
            done = ~clean_correct
        else:
            done = torch.zeros_like(clean_correct)
        best_loss = torch.full((x.shape[0],), float("-inf"), device=x.device, dtype=x.dtype)
        run = self._run_early_stop if self.early_stop else self._run_plain
        for restart in range(self.restarts):
            rows = torch.nonzero(~done).squeeze(1) if self.early_stop else None
            if rows is None:
                rows = torch.arange(x.shape[0], device=x.device)
            if rows.numel() == 0:
                break
            t_rows = None if targets is None else targets[rows]
            final = run(
                model=model,
                x=x[rows],
                y=y[rows],
                targets=t_rows,
                keys=indices[rows],
                step=restart,
            )
            if self.restarts == 1:
                x_out[rows] = final
                break
            # Keep, per example, the first run whose result fools the model, else the result
            # of highest loss.
            with torch.no_grad():
                logits = model(final)
                fooled = self._fooled(logits, y[rows], t_rows)
                loss = self._objective(logits, y[rows], t_rows)
            open_rows = ~done[rows]
            take = open_rows & (fooled | (loss > best_loss[rows]))
            x_out[rows[take]] = final[take]
            best_loss[rows[take]] = loss[take]
            done[rows[open_rows & fooled]] = True
        return x_out

    def _start(self, x: torch.Tensor, keys: torch.Tensor, step: int) -> torch.Tensor:
        if not self.random_start:
            return x.clone()
        rng = ExampleRandom(seed=self.seed)
        return random_start(
            rng, x=x, indices=keys, step=step, norm=self.norm, eps=self.eps, bounds=self.bounds
        )

    def _box(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Linf box of :func:`linf_box` around ``x`` (unused, ``(x, x)``, for other norms)."""
        if self.norm is Norm.LINF:
            return linf_box(x, eps=self.eps, bounds=self.bounds)
        return x, x

    def _step(
        self,
        x_adv: torch.Tensor,
        grad: torch.Tensor,
        x: torch.Tensor,
        *,
        low: torch.Tensor,
        high: torch.Tensor,
    ) -> torch.Tensor:
        """One ascent step from ``x_adv`` (updated in place), projected back into the threat
        model; ``(low, high)`` is :meth:`_box` of ``x``. Runs without gradients."""
        if self.norm is Norm.LINF:
            x_adv.add_(grad.sign_(), alpha=self.step_size)
            return torch.clamp(x_adv, min=low, max=high)
        x_adv.add_(normalize(grad, self.norm), alpha=self.step_size)
        return project_to_threat(x_adv, x, norm=self.norm, eps=self.eps, bounds=self.bounds)

    def _run_plain(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        keys: torch.Tensor,
        step: int,
    ) -> torch.Tensor:
        """Every example, every step: the minimal loop (one forward and one backward a step)."""
        x_adv = self._start(x, keys, step)
        low, high = self._box(x)
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            loss = self._objective(model(x_adv), y, targets).sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = self._step(x_adv.detach(), grad, x, low=low, high=high)
        return x_adv.detach()

    def _run_early_stop(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        keys: torch.Tensor,
        step: int,
    ) -> torch.Tensor:
        """The evaluation mode: an example leaves the working batch at its first success.

        The success of an iterate is read from the logits of the forward pass that also gives
        its gradient, so it costs no extra pass. Finished examples are marked on the device
        and dropped from the batch at the working set's checks (see
        :mod:`trustlab.robustness._working`), so the loop does not wait for the device.
        """
        n = x.shape[0]
        work = WorkingSet(n, device=x.device)
        x, y, keys = work.gather(x), work.gather(y), work.gather(keys)
        targets = None if targets is None else work.gather(targets)
        out = x.clone()
        found = x.clone()
        x_adv = self._start(x, keys, step)
        low, high = self._box(x)
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            with model.only(work.counted):
                logits = model(x_adv)
            loss = self._objective(logits, y, targets).sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = x_adv.detach()
                hit = work.retire(self._fooled(logits, y, targets))
                found = torch.where(expand_rows(hit, found), x_adv, found)
                keep = work.check((out, found))
                if keep is not None:
                    x_adv, grad, x, y, low, high, found = (
                        t[keep] for t in (x_adv, grad, x, y, low, high, found)
                    )
                    targets = None if targets is None else targets[keep]
                if work.empty:
                    break
                x_adv = self._step(x_adv, grad, x, low=low, high=high)
        work.scatter(out, torch.where(expand_rows(work.active, found), x_adv, found))
        return out[:n]


@register_attack
class TargetedPGD(PGD):
    """Targeted projected gradient descent (Madry et al., 2018; Kurakin et al., 2017).

    PGD that descends the cross-entropy of the target class (``loss="ce"``) or ascends the
    target's margin ``z_t - max_{i != t} z_i`` (``loss="margin"``), so that ``x_adv`` is
    classified as ``targets``. Same parameters as :class:`PGD`; ``generate`` needs
    ``targets``, one class per example. With ``early_stop=True`` an example stops being
    attacked once it is classified as its target.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y, t = torch.rand(2, 4), torch.tensor([0, 1]), torch.tensor([2, 2])
    >>> result = TargetedPGD(eps=0.1).generate(model=model, x=x, y=y, targets=t)
    >>> result.targets.tolist()
    [2, 2]
    """

    name: ClassVar[str] = "pgd-targeted"
    targeted: ClassVar[bool] = True

    def _objective(
        self, logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        assert targets is not None
        if self.loss == "ce":
            return -F.cross_entropy(logits, targets, reduction="none")
        return -margin_loss(logits, targets)

    def _fooled(
        self, logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        assert targets is not None
        return logits.argmax(dim=1) == targets

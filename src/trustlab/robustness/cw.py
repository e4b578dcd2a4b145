"""The Carlini-Wagner L2 attack (Carlini & Wagner, 2017)."""

from __future__ import annotations

from typing import ClassVar

import torch

from trustlab.core.params import Boolean, Constraint, Optional, validate_params
from trustlab.robustness._counting import CountingModel
from trustlab.robustness._params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, store_params
from trustlab.robustness.base import Attack
from trustlab.robustness.norms import Norm, expand_rows, flat
from trustlab.robustness.registry import register_attack

__all__ = ["CarliniWagnerL2"]

#: The constant's upper bound stays at this value until a success is found.
NO_UPPER_BOUND = 1e10
#: Adam's moment decay rates and epsilon (TensorFlow's defaults, used by the reference).
BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8
#: tanh-space inputs are scaled by this before atanh so the box edges map to finite values.
TANH_SHRINK = 0.999999


@register_attack
class CarliniWagnerL2(Attack):
    """The minimum-norm L2 attack of Carlini and Wagner, with a binary search over ``c``.

    Carlini and Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017.
    The attack changes variables to ``x_adv = low + (high - low) (tanh(w) + 1) / 2``, which
    keeps ``x_adv`` in ``bounds``, and minimises with Adam

        ``||x_adv - x||_2^2 + c * max(z_y - max_{i != y} z_i, -kappa)``

    for ``steps`` iterations. A binary search over ``c`` per example (``binary_search_steps``
    rounds from ``initial_const``; ``c`` is multiplied by 10 while no success is found) keeps
    the smallest perturbation that fools the model with margin ``kappa``.

    Threat model: white box, untargeted, minimum L2 norm; ``x_adv`` inside ``bounds``. With
    ``eps`` set, an example counts as broken only if the perturbation found has an L2 norm of
    at most ``eps``: larger ones are replaced by the clean input, so that robust accuracy at
    ``eps`` can be read from the result.

    Parameters
    ----------
    norm : {"L2"}, default="L2"
    eps : float, optional
        The L2 radius for robust accuracy; ``None`` returns every perturbation found.
    confidence : float, default=0.0
        The margin ``kappa`` by which the wrong class must win.
    steps : int, default=1000
        Adam iterations per binary-search round (the reference runs up to 10,000 with early
        abort; 1,000 is enough for small models and bounds the cost).
    lr : float, default=0.01
        Adam's learning rate.
    binary_search_steps : int, default=9
    initial_const : float, default=1e-3
    abort_early : bool, default=True
        Stop an example's round once its objective has not fallen by 0.01 % over a tenth of
        the steps (the reference's rule, applied per example rather than to the batch's sum so
        that results do not depend on the batch).
    bounds : (float, float), default=(0.0, 1.0)
    seed : int, default=0
        Unused: the attack is deterministic. Kept for a uniform interface.

    Notes
    -----
    Examples the model already misclassifies are returned unchanged (perturbation 0, the
    minimum). The reference attacks them too.

    Shapes
    ------
    ``x``: (n, ...) in ``bounds``; ``y``: (n,); the model maps (b, ...) to logits (b, k).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.rand(3, 4), torch.tensor([0, 1, 2])
    >>> attack = CarliniWagnerL2(steps=50, binary_search_steps=3)
    >>> result = attack.generate(model=model, x=x, y=y)
    >>> bool(((result.x_adv >= 0) & (result.x_adv <= 1)).all())
    True
    """

    name: ClassVar[str] = "cw-l2"
    norms: ClassVar[tuple[Norm, ...]] = (Norm.L2,)
    targeted: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "eps": Optional(POSITIVE),
        "confidence": NON_NEGATIVE,
        "steps": AT_LEAST_ONE,
        "lr": POSITIVE,
        "binary_search_steps": AT_LEAST_ONE,
        "initial_const": POSITIVE,
        "abort_early": Boolean(),
    }

    confidence: float
    steps: int
    lr: float
    binary_search_steps: int
    initial_const: float
    abort_early: bool

    def __init__(
        self,
        *,
        norm: Norm | str = "L2",
        eps: float | None = None,
        confidence: float = 0.0,
        steps: int = 1000,
        lr: float = 0.01,
        binary_search_steps: int = 9,
        initial_const: float = 1e-3,
        abort_early: bool = True,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            norm=norm,
            eps=eps,
            confidence=confidence,
            steps=steps,
            lr=lr,
            binary_search_steps=binary_search_steps,
            initial_const=initial_const,
            abort_early=abort_early,
            bounds=bounds,
            seed=seed,
        )
        validate_params(self)

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
        low, high = self.bounds
        span = high - low
        rows_all = torch.nonzero(clean_correct).squeeze(1)
        best_adv = x.clone()
        if rows_all.numel() == 0:
            return best_adv
        xs, ys = x[rows_all], y[rows_all]
        w_clean = torch.atanh(((xs - low) / span * 2 - 1) * TANH_SHRINK)
        m = xs.shape[0]
        lower = torch.zeros(m, dtype=torch.float64, device=x.device)
        upper = torch.full((m,), NO_UPPER_BOUND, dtype=torch.float64, device=x.device)
        const = torch.full((m,), self.initial_const, dtype=torch.float64, device=x.device)
        best_l2 = torch.full((m,), float("inf"), dtype=x.dtype, device=x.device)
        found = xs.clone()
        for _ in range(self.binary_search_steps):
            succeeded = self._round(
                model=model,
                x=xs,
                y=ys,
                w_clean=w_clean,
                const=const.to(x.dtype),
                best_l2=best_l2,
                found=found,
            )
            upper = torch.where(succeeded, torch.minimum(upper, const), upper)
            lower = torch.where(succeeded, lower, torch.maximum(lower, const))
            bounded = upper < NO_UPPER_BOUND / 10
            const = torch.where(bounded, (lower + upper) / 2, const * 10)
        fooled = torch.isfinite(best_l2)
        if self.eps is not None:
            fooled &= flat(found - xs).norm(dim=1) <= self.eps
        best_adv[rows_all[fooled]] = found[fooled]
        return best_adv

    def _round(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        w_clean: torch.Tensor,
        const: torch.Tensor,
        best_l2: torch.Tensor,
        found: torch.Tensor,
    ) -> torch.Tensor:
        """One binary-search round of Adam from ``w_clean``; updates ``best_l2`` and
        ``found`` in place and returns which examples were fooled in this round."""
        low, high = self.bounds
        span = high - low
        m = x.shape[0]
        succeeded = torch.zeros(m, dtype=torch.bool, device=x.device)
        rows = torch.arange(m, device=x.device)
        w = w_clean.clone()
        first = torch.zeros_like(w)
        second = torch.zeros_like(w)
        previous = torch.full((m,), float("inf"), dtype=x.dtype, device=x.device)
        check_every = max(self.steps // 10, 1)
        xs, ys, cs = x, y, const
        for step in range(self.steps):
            w.requires_grad_(True)
            x_adv = low + span * (torch.tanh(w) + 1) / 2
            logits = model(x_adv)
            l2 = flat(x_adv - xs).pow(2).sum(dim=1)
            true = logits.gather(1, ys[:, None]).squeeze(1)
            others = logits.scatter(1, ys[:, None], float("-inf")).amax(dim=1)
            margin = torch.clamp(true - others + self.confidence, min=0)
            objective = l2 + cs * margin
            (grad,) = torch.autograd.grad(objective.sum(), w)
            with torch.no_grad():
                w = w.detach()
                # The iterate just evaluated: a success with margin kappa that is smaller
                # than the best so far replaces it.
                shifted = logits.scatter_add(
                    1, ys[:, None], torch.full_like(true[:, None], self.confidence)
                )
                hit = shifted.argmax(dim=1) != ys
                succeeded[rows] = succeeded[rows] | hit
                known = best_l2[rows]
                better = hit & (l2 < known)
                best_l2[rows] = torch.where(better, l2.detach(), known)
                found[rows] = torch.where(expand_rows(better, xs), x_adv.detach(), found[rows])
                # Adam, per coordinate (so per example).
                t = step + 1
                first.mul_(BETA1).add_(grad, alpha=1 - BETA1)
                second.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
                corrected = self.lr * (1 - BETA2**t) ** 0.5 / (1 - BETA1**t)
                w -= corrected * first / (second.sqrt() + ADAM_EPS)
                if self.abort_early and step % check_every == 0:
                    value = objective.detach()
                    stuck = value > previous * 0.9999
                    previous = value
                    if bool(stuck.any()):
                        keep = ~stuck
                        if not bool(keep.any()):
                            break
                        rows, w, first, second = rows[keep], w[keep], first[keep], second[keep]
                        xs, ys, cs, previous = xs[keep], ys[keep], cs[keep], previous[keep]
        return succeeded

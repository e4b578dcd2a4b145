"""The fast gradient sign method (Goodfellow et al., 2015) and its L2 variant."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from trustlab.core.params import Boolean, Constraint, Optional, validate_params
from trustlab.robustness._counting import CountingModel
from trustlab.robustness._params import POSITIVE, store_params
from trustlab.robustness._random import ExampleRandom, random_start
from trustlab.robustness.base import Attack
from trustlab.robustness.norms import Norm, normalize, project_to_threat
from trustlab.robustness.registry import register_attack

__all__ = ["FGSM"]


@register_attack
class FGSM(Attack):
    """One gradient step of size ``eps`` on the cross-entropy loss.

    Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR
    2015: ``x_adv = clip(x + eps * sign(grad_x CE(f(x), y)))``. For L2 the step follows the
    normalised gradient ``grad / ||grad||_2`` (the "fast gradient method" of Miyato et al. and
    cleverhans). With ``random_start``, the step starts from a uniform random point of the ball
    and the result is projected back onto it (FGSM with random start, as in "fast" adversarial
    training: Wong, Rice and Kolter, ICLR 2020).

    Threat model: white box, untargeted, ``||x_adv - x|| <= eps`` (Linf or L2), ``x_adv``
    inside ``bounds``. Costs one forward and one backward pass per example.

    Parameters
    ----------
    norm : {"Linf", "L2"}, default="Linf"
    eps : float
        The radius of the threat model, > 0.
    step_size : float, optional
        The size of the step; defaults to ``eps`` (Goodfellow et al.). Wong et al. use
        ``1.25 * eps`` with a random start.
    random_start : bool, default=False
    bounds : (float, float), default=(0.0, 1.0)
    seed : int, default=0
        Seed of the random start, keyed by example.

    Shapes
    ------
    ``x``: (n, ...) in ``bounds``; ``y``: (n,); the model maps (b, ...) to logits (b, k).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.full((2, 4), 0.5), torch.tensor([0, 1])
    >>> result = FGSM(eps=0.1).generate(model=model, x=x, y=y)
    >>> result.forwards, result.backwards
    (2, 2)
    """

    name: ClassVar[str] = "fgsm"
    eps: float
    step_size: float
    random_start: bool
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)
    targeted: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "step_size": Optional(POSITIVE),
        "random_start": Boolean(),
    }

    def __init__(
        self,
        *,
        norm: Norm | str = "Linf",
        eps: float,
        step_size: float | None = None,
        random_start: bool = False,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            norm=norm,
            eps=eps,
            step_size=step_size,
            random_start=random_start,
            bounds=bounds,
            seed=seed,
        )
        validate_params(self)
        if self.step_size is None:
            self.step_size = self.eps

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
        if self.random_start:
            rng = ExampleRandom(seed=self.seed)
            start = random_start(
                rng,
                x=x,
                indices=indices,
                step=0,
                norm=self.norm,
                eps=self.eps,
                bounds=self.bounds,
            )
        else:
            start = x.clone()
        start.requires_grad_(True)
        loss = F.cross_entropy(model(start), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, start)
        with torch.no_grad():
            stepped = start.detach() + self.step_size * normalize(grad, self.norm)
            return project_to_threat(stepped, x, norm=self.norm, eps=self.eps, bounds=self.bounds)

"""PGD adversarial training (Madry et al., 2018)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.params import Boolean, Constraint, Optional
from trustlab.robustness._params import AT_LEAST_ONE, POSITIVE, store_params
from trustlab.robustness.norms import Norm
from trustlab.robustness.registry import register_trainer
from trustlab.robustness.training.base import AdversarialTrainer

__all__ = ["PGDAdversarialTraining"]

#: Madry et al.'s step size rule, 2.5 * eps / steps.
STEP_SIZE_FACTOR = 2.5


@register_trainer
class PGDAdversarialTraining(AdversarialTrainer):
    """Train on PGD adversarial examples: min over weights of max over the ball of the loss.

    Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models Resistant to
    Adversarial Attacks", ICLR 2018. Each mini-batch is replaced by its PGD examples (``steps``
    steps of size ``step_size`` on the cross-entropy, from a uniform random point of the ball),
    and the optimiser takes one step on their mean cross-entropy.

    Threat model: ``||x_adv - x|| <= eps`` in the Linf or L2 norm, ``x_adv`` inside ``bounds``.

    The inner PGD runs with the model in training mode, as in the reference implementations
    (batch-norm statistics and dropout behave as during the update). It is a private loop, not
    :class:`~trustlab.robustness.pgd.PGD`, for the reasons given in
    :mod:`trustlab.robustness.training.base`.

    Parameters
    ----------
    norm : {"Linf", "L2"}, default="Linf"
    eps : float
        The radius of the threat model, > 0.
    steps : int, default=10
        PGD steps per mini-batch (Madry et al. use 40 on MNIST and 7 on CIFAR-10).
    step_size : float, optional
        Defaults to ``2.5 * eps / steps``.
    random_start : bool, default=True
        Start PGD from a uniform random point of the ball.
    epochs, lr, batch_size, optimizer, weight_decay, seed
        As in :func:`trustlab.core.training.fit_classifier` (Adam with lr 1e-3 by default; the
        paper uses SGD or Adam with its own schedules, which are left to the caller).
    bounds : (float, float), default=(0.0, 1.0)
        The valid input range.

    Shapes
    ------
    ``x``: (n, ...) in ``bounds``; ``y``: (n,); the model maps (b, ...) to logits (b, k).

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> _ = torch.manual_seed(0)
    >>> model = build_model("mlp", arguments={"in_features": 4, "num_classes": 2})
    >>> x, y = torch.rand(32, 4), torch.randint(0, 2, (32,))
    >>> trainer = PGDAdversarialTraining(eps=0.1, steps=3, epochs=2).fit(model=model, x=x, y=y)
    >>> trainer.report_.epochs_run
    2
    """

    name: ClassVar[str] = "pgd-at"
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "steps": AT_LEAST_ONE,
        "step_size": Optional(POSITIVE),
        "random_start": Boolean(),
    }

    steps: int
    step_size: float
    random_start: bool

    def __init__(
        self,
        *,
        norm: Norm | str = "Linf",
        eps: float,
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        epochs: int = 10,
        lr: float = 1e-3,
        batch_size: int = 64,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(self, steps=steps, step_size=step_size, random_start=random_start)
        super().__init__(
            norm=norm,
            eps=eps,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            weight_decay=weight_decay,
            bounds=bounds,
            seed=seed,
        )
        if self.step_size is None:
            self.step_size = STEP_SIZE_FACTOR * self.eps / self.steps

    def _loss(
        self,
        *,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        indices: torch.Tensor,
        epoch: int,
    ) -> torch.Tensor:
        start = x
        if self.random_start:
            start = self._ball_start(x, indices=indices, step=epoch)
        x_adv = self._ce_ascent(
            model, x, y, start=start, step_size=self.step_size, steps=self.steps
        )
        return F.cross_entropy(model(x_adv), y)

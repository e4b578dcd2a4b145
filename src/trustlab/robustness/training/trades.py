"""TRADES: the trade-off between natural and robust error (Zhang et al., 2019)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.params import Constraint, Optional
from trustlab.core.training import model_mode
from trustlab.robustness._params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, store_params
from trustlab.robustness.norms import Norm
from trustlab.robustness.registry import register_trainer
from trustlab.robustness.training.base import AdversarialTrainer

__all__ = ["TRADES"]

#: The scale of the reference code's random start, ``x + 0.001 * N(0, I)``.
INIT_SCALE = 0.001


def _kl(adv_logits: torch.Tensor, clean_logits: torch.Tensor) -> torch.Tensor:
    """Summed KL(softmax(clean) || softmax(adv)) over the batch, as the reference computes it
    with ``nn.KLDivLoss(reduction="sum")(log_softmax(adv), softmax(clean))``."""
    return F.kl_div(
        F.log_softmax(adv_logits, dim=1), F.softmax(clean_logits, dim=1), reduction="sum"
    )


@register_trainer
class TRADES(AdversarialTrainer):
    """TRADES: cross-entropy on clean inputs plus ``beta`` times a KL robustness term.

    Zhang, Yu, Jiao, Xing, El Ghaoui and Jordan, "Theoretically Principled Trade-off between
    Robustness and Accuracy", ICML 2019 (reference code: yaodongyu/TRADES, ``trades.py``).
    The loss of a mini-batch is::

        CE(f(x), y) + beta * KL(f(x) || f(x_adv)) / batch_size

    where ``x_adv`` maximises the same KL term inside the ball: ``steps`` steps of size
    ``step_size`` from ``x + 0.001 * N(0, I)`` (the gradient's sign for Linf; the normalised
    gradient for L2, a random direction where it is zero), run with the model in eval mode as in
    the reference. As in the reference, the KL divergence is taken from the clean to the
    adversarial softmax (``nn.KLDivLoss`` on ``log_softmax(f(x_adv))`` against
    ``softmax(f(x))``) and its gradient flows through both.

    Threat model: ``||x_adv - x|| <= eps`` in the Linf or L2 norm, ``x_adv`` inside ``bounds``.

    Parameters
    ----------
    norm : {"Linf", "L2"}, default="Linf"
    eps : float
        The radius of the threat model, > 0 (the reference uses 0.031 on CIFAR-10, 0.3 on MNIST).
    beta : float, default=6.0
        Weight of the robustness term (the reference's CIFAR-10 setting; 1/lambda in the paper).
    steps : int, default=10
        Inner steps (the reference: 10 on CIFAR-10, 40 on MNIST).
    step_size : float, optional
        Defaults to ``eps / 4`` for Linf (close to the reference's 0.007 at eps 0.031) and to
        ``2 * eps / steps`` for L2 (the learning rate of the reference's L2 inner loop).
    epochs, lr, batch_size, optimizer, weight_decay, seed
        As in :func:`trustlab.core.training.fit_classifier` (the reference trains with SGD,
        momentum 0.9, and a step schedule, left to the caller here).
    bounds : (float, float), default=(0.0, 1.0)
        The valid input range (the reference clamps to [0, 1]).

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
    >>> len(TRADES(eps=0.1, steps=3, epochs=2).fit(model=model, x=x, y=y).report_.losses)
    2
    """

    name: ClassVar[str] = "trades"
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "beta": NON_NEGATIVE,
        "steps": AT_LEAST_ONE,
        "step_size": Optional(POSITIVE),
    }

    beta: float
    steps: int
    step_size: float

    def __init__(
        self,
        *,
        norm: Norm | str = "Linf",
        eps: float,
        beta: float = 6.0,
        steps: int = 10,
        step_size: float | None = None,
        epochs: int = 10,
        lr: float = 1e-3,
        batch_size: int = 64,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(self, beta=beta, steps=steps, step_size=step_size)
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
            linf = self.norm is Norm.LINF
            self.step_size = self.eps / 4 if linf else 2 * self.eps / self.steps

    def _loss(
        self,
        *,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        indices: torch.Tensor,
        epoch: int,
    ) -> torch.Tensor:
        noise = self._random().normal(
            indices=indices, step=epoch, shape=tuple(x.shape[1:]), device=x.device, dtype=x.dtype
        )
        start = self._clip(x + INIT_SCALE * noise, x)
        with model_mode(model, training=False):
            with torch.no_grad():
                target = model(x)

            def objective(logits: torch.Tensor) -> torch.Tensor:
                return _kl(logits, target)

            x_adv = self._ascend(
                model,
                x,
                objective=objective,
                start=start,
                step_size=self.step_size,
                steps=self.steps,
            )
        clean_logits = model(x)
        robust = _kl(model(x_adv), clean_logits) / x.shape[0]
        return F.cross_entropy(clean_logits, y) + self.beta * robust

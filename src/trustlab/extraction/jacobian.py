"""Jacobian-based dataset augmentation (Papernot et al., 2017)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, model_device_and_dtype
from trustlab.core.params import Bounds, Constraint, Integer, Optional, Real, validate_params
from trustlab.core.training import model_mode
from trustlab.core.typing import ArrayLike
from trustlab.extraction.base import ExtractionAttack, _Session
from trustlab.extraction.registry import register_attack

__all__ = ["JacobianAugmentation", "step_size"]

#: Rows per forward and backward pass of the augmentation step.
AUGMENT_BATCH = 512


@register_attack("jacobian-augmentation")
class JacobianAugmentation(ExtractionAttack):
    """Papernot et al.'s substitute training with Jacobian-based dataset augmentation.

    Starting from a small seed set ``S_0`` labelled by the oracle, each substitute epoch
    ``rho`` trains the copy on ``S_rho`` and then adds, for every ``x`` in ``S_rho``, the point
    ``x + lambda_rho * sign(d s_{O(x)}(x) / dx)``: a step along the sign of the gradient of the
    copy's output for the oracle's label ``O(x)`` (the row of the copy's Jacobian that the
    paper uses), clipped to ``clip``. The step size follows the paper's periodic schedule
    ``lambda_rho = lam * (-1) ** floor(rho / tau)``, so the search turns back every ``tau``
    epochs. The new points are labelled by the oracle and the set roughly doubles each epoch.

    When the remaining budget cannot label all new points, a random subset of them is queried
    (in the spirit of the paper's reservoir sampling); the attack stops when the budget is
    spent or after ``substitute_epochs`` epochs, training the copy a last time. Probability
    answers are used as soft targets (the paper uses labels only); the gradient is then taken
    for their arg-max. Classifiers only: the method needs a label to follow.

    Threat model: black-box label (or probability) access; the attacker has a few natural
    inputs as seeds (the paper uses 150 test images for MNIST).

    Parameters
    ----------
    seed_x : array-like of shape (n_seed, ...)
        The initial set ``S_0``.
    substitute_epochs : int, default=6
        Substitute training epochs ``rho`` (the paper uses 6), >= 1.
    lam : float, default=0.1
        Step size ``lambda`` (the paper uses 0.1), > 0.
    tau : int, default=3
        Period of the sign flip of ``lambda`` (the paper uses 3), >= 1.
    clip : tuple of float or None, default=(0.0, 1.0)
        Valid input range ``(low, high)`` with ``low < high``; ``None`` for no clipping.
    epochs, lr, batch_size, seed, embedding_loss
        See :class:`~trustlab.extraction.base.ExtractionAttack`; ``epochs`` is the number of
        passes per substitute epoch (the paper uses 10).

    References
    ----------
    .. [1] N. Papernot, P. McDaniel, I. Goodfellow, S. Jha, Z. B. Celik and A. Swami,
       "Practical Black-Box Attacks against Machine Learning", ASIA CCS 2017.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from trustlab.extraction.oracle import LocalOracle
    >>> _ = torch.manual_seed(0)
    >>> attack = JacobianAugmentation(seed_x=torch.rand(10, 4), substitute_epochs=3, epochs=1)
    >>> result = attack.extract(oracle=LocalOracle(model=nn.Linear(4, 3), output="labels"),
    ...                         surrogate=nn.Linear(4, 3), budget=100)
    >>> result.queries_used  # 10 seeds, doubled twice
    40
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "substitute_epochs": Integer(low=1),
        "lam": Real(low=0, closed="neither"),
        "tau": Integer(low=1),
        "clip": Optional(Bounds()),
    }

    def __init__(
        self,
        *,
        seed_x: ArrayLike,
        substitute_epochs: int = 6,
        lam: float = 0.1,
        tau: int = 3,
        clip: tuple[float, float] | None = (0.0, 1.0),
        epochs: int = 10,
        lr: float = 1e-3,
        batch_size: int = 64,
        seed: int = 0,
        embedding_loss: str = "mse",
    ) -> None:
        super().__init__(
            epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, embedding_loss=embedding_loss
        )
        self.seed_x = seed_x
        self.substitute_epochs = substitute_epochs
        self.lam = lam
        self.tau = tau
        self.clip = clip
        validate_params(self)

    def _run(self, *, session: _Session, surrogate: nn.Module) -> None:
        generator = self._generator()
        current = as_input_tensor(self.seed_x).to(torch.float32)
        session.ask(current)
        self._require_classifier(session, "Use KnockoffNets or Distillation for encoders.")
        for rho in range(self.substitute_epochs):
            self._train(session=session, surrogate=surrogate, round_index=rho)
            if rho == self.substitute_epochs - 1 or session.remaining == 0:
                break
            x_all, answers = session.transfer_set()
            labels = answers.long() if answers.dim() == 1 else answers.argmax(dim=1)
            step = step_size(lam=self.lam, tau=self.tau, rho=rho)
            new = self._augment(surrogate, x_all, labels, step)
            if new.shape[0] > session.remaining:
                keep = torch.randperm(new.shape[0], generator=generator)[: session.remaining]
                new = new[torch.sort(keep).values]
            session.ask(new)

    def _augment(
        self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, step: float
    ) -> torch.Tensor:
        device, dtype = model_device_and_dtype(model)
        parts = []
        with model_mode(model, training=False):
            for start in range(0, x.shape[0], AUGMENT_BATCH):
                rows = slice(start, start + AUGMENT_BATCH)
                xb = x[rows].to(device=device, dtype=dtype).requires_grad_(True)
                selected = model(xb).gather(1, labels[rows].to(device)[:, None]).sum()
                (gradient,) = torch.autograd.grad(selected, xb)
                moved = xb.detach() + step * gradient.sign()
                if self.clip is not None:
                    moved = moved.clamp(*self.clip)
                parts.append(moved.cpu().to(torch.float32))
        return torch.cat(parts)


def step_size(*, lam: float, tau: int, rho: int) -> float:
    """The paper's periodic step size ``lam * (-1) ** floor(rho / tau)`` for epoch ``rho``.

    Examples
    --------
    >>> [step_size(lam=0.1, tau=2, rho=rho) for rho in range(5)]
    [0.1, 0.1, -0.1, -0.1, 0.1]
    """
    return lam if (rho // tau) % 2 == 0 else -lam

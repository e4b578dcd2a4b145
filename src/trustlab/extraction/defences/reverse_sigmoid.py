"""The reverse-sigmoid perturbation of Lee et al. (2019)."""

from __future__ import annotations

from typing import ClassVar

import torch

from trustlab.core.params import Constraint, Real, validate_params
from trustlab.extraction.defences.base import OutputDefence
from trustlab.extraction.defences.registry import register_defence

__all__ = ["ReverseSigmoid"]

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit, as in the reference code.
EPS = 1e-9
#: Added to the label's value where other classes tie with it, so the label stays the arg-max.
TIE_MARGIN = 1e-6


@register_defence("reverse-sigmoid")
class ReverseSigmoid(OutputDefence):
    """Deceptive perturbation of probabilities that keeps the top-1 label (Lee et al., 2019).

    For a probability vector ``y`` the defence returns

    ``y_hat = alpha * clip(y - beta * (sigmoid(gamma * logit(y)) - 1/2), 0, 1)``

    elementwise, with ``alpha`` normalising the row to sum to one and ``y`` clipped to
    ``[1e-9, 1 - 1e-9]`` inside the logit. The perturbation is small where ``y`` is near 1/2
    and pushes confident values back towards the middle, so the softmax of a surrogate trained
    on ``y_hat`` (a cross-entropy fit, which inverts the sigmoid) lands far from the victim's
    logits. The same vector always gets the same answer, for every client.

    Departure from the paper: the paper's formula can, for large ``beta * gamma``, reorder the
    classes. Here the top-1 label is always kept: if the perturbed row's arg-max is not the
    victim's, the values of the two classes are swapped; a class that still ties with the
    label (both clipped to 1) leaves the label ahead by ``TIE_MARGIN`` (1e-6, then
    renormalised); and a row that clips to all zeros is answered with the one-hot vector of
    the victim's label. Computations are in float64.

    Threat model: the client sees probabilities with the victim's top-1 label whose values are
    deliberately misleading for training a copy.

    Parameters
    ----------
    beta : float
        Magnitude of the perturbation, > 0 (the paper explores values up to about 1).
    gamma : float
        Steepness of the sigmoid, > 0 (the paper uses values around 0.1 to 1).

    References
    ----------
    .. [1] T. Lee, B. Edwards, I. Molloy and D. Su, "Defending Against NN Model Stealing
       Attacks Using Deceptive Perturbations", IEEE S&P Workshops 2019.

    Examples
    --------
    >>> import torch
    >>> probs = torch.tensor([[0.7, 0.2, 0.1]])
    >>> out = ReverseSigmoid(beta=0.5, gamma=0.5).apply(
    ...     outputs=probs, inputs=torch.zeros(1, 2), client_id="a")
    >>> int(out.argmax()), bool(torch.isclose(out.sum(), torch.tensor(1.0)))
    (0, True)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "beta": Real(low=0, closed="neither"),
        "gamma": Real(low=0, closed="neither"),
    }

    def __init__(self, *, beta: float, gamma: float) -> None:
        self.beta = beta
        self.gamma = gamma
        validate_params(self)

    @property
    def returns_probabilities(self) -> bool:
        return True

    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        probs = outputs.detach().cpu().to(torch.float64)
        clipped = probs.clamp(EPS, 1.0 - EPS)
        logit = torch.log(clipped) - torch.log1p(-clipped)
        perturbation = self.beta * (torch.sigmoid(self.gamma * logit) - 0.5)
        perturbed = (probs - perturbation).clamp(0.0, 1.0)
        total = perturbed.sum(dim=1, keepdim=True)
        label = probs.argmax(dim=1)
        one_hot = torch.nn.functional.one_hot(label, probs.shape[1]).to(torch.float64)
        defended = torch.where(total > 0, perturbed / total.clamp_min(1e-300), one_hot)
        return _keep_label(defended, label)


def _keep_label(values: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Make ``label`` the strict arg-max of each row; rows already right stay as they are.

    A row whose arg-max is another class has the two values swapped; a row where other classes
    still tie with the label (values clipped to the same bound) gets ``TIE_MARGIN`` added to
    the label's value and is renormalised.
    """
    fixed = values.clone()
    rows = torch.arange(values.shape[0])
    current = fixed.argmax(dim=1)
    wrong = torch.nonzero(current != label).flatten()
    if wrong.numel():
        top = fixed[wrong, current[wrong]].clone()
        fixed[wrong, current[wrong]] = fixed[wrong, label[wrong]]
        fixed[wrong, label[wrong]] = top
    others = fixed.clone()
    others[rows, label] = -1.0
    gap = fixed[rows, label] - others.max(dim=1).values
    tied = gap <= 0
    if bool(tied.any()):
        bump = torch.where(tied, TIE_MARGIN - gap, torch.zeros_like(gap))
        fixed[rows, label] += bump
        fixed = fixed / fixed.sum(dim=1, keepdim=True)
    return fixed

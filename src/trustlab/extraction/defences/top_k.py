"""Top-k truncation of the victim's probabilities."""

from __future__ import annotations

from typing import ClassVar

import torch

from trustlab.core.params import Boolean, Constraint, Integer, validate_params
from trustlab.extraction.defences.base import OutputDefence
from trustlab.extraction.defences.registry import register_defence

__all__ = ["TopK"]


@register_defence("top-k")
class TopK(OutputDefence):
    """Return only the ``k`` largest probabilities of each row; zero the others.

    The truncation defence studied by Tramèr et al. (2016) and Orekondy et al. (2019): with
    ``k=1`` the client learns the label and its confidence, with ``k = n_classes`` everything.
    Ties are broken towards the lower class index, so the result is deterministic. By default
    the kept values are returned unchanged (the row then sums to at most one, and the client
    still sees the victim's confidences); with ``renormalise=True`` they are divided by their
    sum so that each row sums to one. If ``k`` exceeds the number of classes every value is
    kept.

    Threat model: the client sees the top ``k`` classes and their probabilities; the arg-max
    label is never changed.

    Parameters
    ----------
    k : int, default=1
        Values kept per row, >= 1.
    renormalise : bool, default=False
        Rescale the kept values to sum to one.

    References
    ----------
    .. [1] F. Tramèr et al., "Stealing Machine Learning Models via Prediction APIs",
       USENIX Security 2016.
    .. [2] T. Orekondy, B. Schiele and M. Fritz, "Knockoff Nets: Stealing Functionality of
       Black-Box Models", CVPR 2019.

    Examples
    --------
    >>> import torch
    >>> probs = torch.tensor([[0.1, 0.6, 0.3]])
    >>> TopK(k=2).apply(outputs=probs, inputs=torch.zeros(1, 4), client_id="a")
    tensor([[0.0000, 0.6000, 0.3000]])
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k": Integer(low=1),
        "renormalise": Boolean(),
    }

    def __init__(self, *, k: int = 1, renormalise: bool = False) -> None:
        self.k = k
        self.renormalise = renormalise
        validate_params(self)

    @property
    def returns_probabilities(self) -> bool:
        return self.renormalise

    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        k = min(self.k, outputs.shape[1])
        # A stable descending sort puts the lower index first among equal values.
        order = torch.sort(outputs, dim=1, descending=True, stable=True).indices[:, :k]
        keep = torch.zeros_like(outputs, dtype=torch.bool).scatter_(1, order, True)
        truncated = torch.where(keep, outputs, torch.zeros_like(outputs))
        if self.renormalise:
            total = truncated.sum(dim=1, keepdim=True)
            truncated = torch.where(total > 0, truncated / total.clamp_min(1e-30), truncated)
        return truncated

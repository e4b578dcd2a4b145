"""Rounding of the victim's outputs (Tramèr et al., 2016)."""

from __future__ import annotations

from typing import ClassVar

import torch

from trustlab.core.params import Constraint, Integer, validate_params
from trustlab.extraction.defences.base import OutputDefence
from trustlab.extraction.defences.registry import register_defence

__all__ = ["Rounding"]


@register_defence("rounding")
class Rounding(OutputDefence):
    """Round every output value to a fixed number of decimals.

    Tramèr et al. (2016) proposed returning coarse confidence scores so that equation-solving
    and path-finding attacks lose precision. Each value ``p`` becomes ``round(p, decimals)``
    (round half to even, as :func:`torch.round`); nothing else changes. Rows are *not*
    renormalised, so probabilities may sum to slightly more or less than one (by at most
    ``n_classes * 0.5 * 10**-decimals``), which is what the paper's API returned. The defence
    is deterministic and the same for every client; it also applies to embeddings.

    Threat model: the client sees outputs with ``decimals`` decimals; labels are unchanged
    except where two top values round to a tie.

    Parameters
    ----------
    decimals : int, default=2
        Decimals kept, >= 0.

    References
    ----------
    .. [1] F. Tramèr, F. Zhang, A. Juels, M. K. Reiter and T. Ristenpart, "Stealing Machine
       Learning Models via Prediction APIs", USENIX Security 2016.

    Examples
    --------
    >>> import torch
    >>> probs = torch.tensor([[0.123, 0.877]])
    >>> Rounding(decimals=1).apply(outputs=probs, inputs=torch.zeros(1, 2), client_id="a")
    tensor([[0.1000, 0.9000]])
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"decimals": Integer(low=0)}

    def __init__(self, *, decimals: int = 2) -> None:
        self.decimals = decimals
        validate_params(self)

    @property
    def probabilities_only(self) -> bool:
        return False

    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        return torch.round(outputs.to(torch.float64), decimals=self.decimals)

"""Rounding of the victim's outputs (Tramèr et al., 2016)."""

from __future__ import annotations

import torch

from trustlab.extraction._checks import check_int
from trustlab.extraction.defences.base import OutputDefence

__all__ = ["Rounding"]


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

    @property
    def probabilities_only(self) -> bool:
        return False

    def __init__(self, *, decimals: int = 2) -> None:
        self.decimals = decimals

    def _check_params(self) -> None:
        check_int(self.decimals, name="decimals", owner="Rounding", low=0)

    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        return torch.round(outputs.to(torch.float64), decimals=int(self.decimals))

"""Base classes of the defences an extraction oracle can apply.

Two kinds of defence stand between a victim model and the clients who query it:

* an :class:`OutputDefence` rewrites the victim's clean outputs for a batch (probabilities of
  shape (n, n_classes) for a classifier, embeddings of shape (n, d) for an encoder) before they
  are returned; it never changes how many rows or columns there are;
* a :class:`QueryDetector` watches each client's stream of queries and says whether it looks
  like an extraction attack.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import torch

from trustlab.core.errors import DataError
from trustlab.core.params import Constraint, parameter_constraints
from trustlab.extraction._checks import check_client_id, check_outputs

__all__ = [
    "MSG_INPUTS_TYPE",
    "DetectorVerdict",
    "OutputDefence",
    "QueryDetector",
    "declared_repr",
]

MSG_INPUTS_TYPE = (
    "{owner}: inputs must be a torch.Tensor of shape (n, ...) with one row per output row; "
    "got {what}."
)


def declared_repr(obj: object) -> str:
    """``Name(param=value, ...)`` over the parameters ``obj``'s class declares."""
    names = parameter_constraints(type(obj))
    fields = ", ".join(f"{name}={getattr(obj, name)!r}" for name in names)
    return f"{type(obj).__name__}({fields})"


class OutputDefence(abc.ABC):
    """Base class of defences that perturb a victim's outputs.

    Subclasses declare their hyperparameters in ``_parameter_constraints``, store them in
    ``__init__`` (keyword-only) and end it with
    :func:`~trustlab.core.params.validate_params`, so a bad value fails at construction; they
    implement :meth:`_defend`, and :meth:`apply` checks each batch before it is defended.

    Attributes
    ----------
    probabilities_only : bool
        ``True`` for defences that only make sense on probability vectors (they refuse values
        outside [0, 1]); ``False`` for those that also apply to embeddings.
    returns_probabilities : bool
        ``True`` if the answer to probability vectors is again probability vectors (rows in
        [0, 1] summing to one).
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    @property
    def probabilities_only(self) -> bool:
        """Whether the defence applies only to probability vectors (not to embeddings)."""
        return True

    @property
    def returns_probabilities(self) -> bool:
        """Whether probability vectors stay probability vectors (rows summing to one)."""
        return False

    def apply(self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str) -> torch.Tensor:
        """Return the defended outputs of one batch.

        Parameters
        ----------
        outputs : torch.Tensor, shape (n, n_outputs)
            The victim's clean outputs for the batch: probabilities (rows in [0, 1], summing
            to one) for a classifier, embeddings for an encoder.
        inputs : torch.Tensor, shape (n, ...)
            The queried inputs, one row per output row (some defences key their randomness on
            them).
        client_id : str
            Who asked; per-client defences answer each client differently.

        Returns
        -------
        torch.Tensor, shape (n, n_outputs)
            The defended outputs, with the dtype and device of ``outputs``.

        Raises
        ------
        DataError
            If ``outputs`` is not a finite 2-D float tensor (in [0, 1] for probability-only
            defences), ``inputs`` has another number of rows, or ``client_id`` is not a
            non-empty str.
        """
        owner = type(self).__name__
        if not isinstance(inputs, torch.Tensor) or inputs.dim() == 0:
            raise DataError(MSG_INPUTS_TYPE.format(owner=owner, what=type(inputs).__name__))
        outputs = check_outputs(
            outputs, owner=owner, probabilities=self.probabilities_only, n_inputs=inputs.shape[0]
        )
        client_id = check_client_id(client_id, owner=owner)
        defended = self._defend(outputs=outputs.detach(), inputs=inputs, client_id=client_id)
        return defended.to(device=outputs.device, dtype=outputs.dtype)

    @abc.abstractmethod
    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        """Defend a checked batch; parameters are valid when this is called."""

    def __repr__(self) -> str:
        return declared_repr(self)


@dataclasses.dataclass(frozen=True)
class DetectorVerdict:
    """What a :class:`QueryDetector` concludes about one client after a batch of queries.

    Attributes
    ----------
    flagged : bool
        ``True`` if the client's queries look like an extraction attack.
    statistic : float or None
        The detector's test statistic (PRADA: the Shapiro-Wilk ``W``), ``None`` while there
        are too few queries to compute it.
    n_queries : int
        How many queries of this client the detector has seen in all.
    reason : str
        One sentence explaining the verdict.
    """

    flagged: bool
    statistic: float | None
    n_queries: int
    reason: str


class QueryDetector(abc.ABC):
    """Base class of detectors that watch each client's query stream.

    A detector keeps separate state per ``client_id``. The state can be exported as plain
    JSON-serialisable data with :meth:`state_dict` and restored with :meth:`load_state_dict`,
    so a server can keep it across restarts. Hyperparameters are declared and checked at
    construction, as for :class:`OutputDefence`.
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    @abc.abstractmethod
    def observe(
        self, *, inputs: torch.Tensor, client_id: str, labels: torch.Tensor
    ) -> DetectorVerdict:
        """Add a batch of a client's queries and return the verdict on that client.

        Parameters
        ----------
        inputs : torch.Tensor, shape (n, ...)
            The queries, in the order they arrived.
        client_id : str
            Who sent them.
        labels : torch.Tensor of int, shape (n,)
            The victim's predicted class of each query.
        """

    @abc.abstractmethod
    def state_dict(self, client_id: str) -> dict[str, Any]:
        """The detector's state for one client, as JSON-serialisable data."""

    @abc.abstractmethod
    def load_state_dict(self, client_id: str, state: dict[str, Any]) -> None:
        """Replace the state of one client by ``state`` (from :meth:`state_dict`)."""

    @abc.abstractmethod
    def reset(self, client_id: str) -> None:
        """Forget everything about one client."""

    def __repr__(self) -> str:
        return declared_repr(self)

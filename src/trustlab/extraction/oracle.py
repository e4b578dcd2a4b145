"""Oracles: query access to a victim model under a budget.

An :class:`Oracle` is what an extraction attack talks to. It answers batches of queries,
counts and logs them, and refuses a batch that would take it past its budget *before*
answering any of it (a refused batch costs nothing). :class:`LocalOracle` wraps a model in
this process, optionally behind an :class:`~trustlab.extraction.defences.OutputDefence`;
:class:`RemoteOracle` forwards queries to an arena task through a client object.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import as_input_tensor, compute_logits
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import (
    Constraint,
    InstanceOf,
    Integer,
    NonEmptyStr,
    Optional,
    Options,
    validate_params,
)
from trustlab.core.typing import ArrayLike
from trustlab.extraction.defences.base import OutputDefence, declared_repr
from trustlab.extraction.errors import BudgetExhaustedError

__all__ = [
    "MSG_BUDGET",
    "OUTPUT_MODES",
    "LocalOracle",
    "Oracle",
    "QueryAnswer",
    "QueryClient",
    "QueryRecord",
    "RemoteOracle",
]

#: The kinds of answer an oracle can give.
OUTPUT_MODES = ("probabilities", "labels", "top-k", "embeddings")

MSG_BUDGET = (
    "This batch of {n} queries would exceed the query budget: {used} of {budget} used, "
    "{remaining} left. Send at most {remaining} rows; the refused batch was not counted."
)
MSG_TOP_K = (
    "The 'top_k' parameter of LocalOracle must be an int >= 1 when output='top-k', and None "
    "otherwise. Got {value!r} with output={output!r}."
)
MSG_DEFENCE_EMBEDDINGS = (
    "{defence} works only on probabilities and cannot defend output='embeddings'; use "
    "EmbeddingTransform, Rounding or AdditiveNoise(probabilities=False)."
)
MSG_REMOTE_OUTPUTS = (
    "The server's answer to {n} queries has outputs of shape {shape}; expected one row per "
    "query. Check that the task id {task_id!r} is a model-extraction task."
)


@dataclasses.dataclass(frozen=True)
class QueryRecord:
    """One answered batch in an oracle's log.

    Attributes
    ----------
    batch_size : int
        Rows in the batch.
    cumulative : int
        Queries answered so far, this batch included.
    time : float
        When the batch was answered (seconds since the epoch, :func:`time.time`).
    seconds : float
        How long answering it took.
    """

    batch_size: int
    cumulative: int
    time: float
    seconds: float


class Oracle(abc.ABC):
    """Query access to a victim model, counted, logged and limited by a budget.

    Subclasses declare their parameters in ``_parameter_constraints`` (checked at
    construction) and implement :meth:`_answer`; :meth:`query` checks the inputs and the
    budget first and records the batch afterwards.

    Attributes
    ----------
    output : str or None
        What the answers are: ``"probabilities"``, ``"labels"``, ``"top-k"`` or
        ``"embeddings"``; ``None`` if the oracle does not know (a remote task).
    """

    output: str | None = None
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    def __init__(self) -> None:
        self._used = 0
        self._log: list[QueryRecord] = []

    def __repr__(self) -> str:
        return declared_repr(self)

    @property
    @abc.abstractmethod
    def budget(self) -> int | None:
        """The total number of queries allowed, or ``None`` for no limit (or unknown)."""

    @property
    def queries_used(self) -> int:
        """Queries answered so far."""
        return self._used

    @property
    def queries_remaining(self) -> int | None:
        """Queries left, or ``None`` for no limit (or unknown)."""
        budget = self.budget
        return None if budget is None else max(budget - self._used, 0)

    @property
    def log(self) -> list[QueryRecord]:
        """One :class:`QueryRecord` per answered batch, oldest first (a copy)."""
        return list(self._log)

    def query(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Answer a batch of queries.

        Parameters
        ----------
        x : torch.Tensor or ndarray, shape (n, ...)
            Inputs as the victim expects them; every value must be finite.

        Returns
        -------
        torch.Tensor, on the CPU
            Shape (n, n_classes) float for probabilities and top-k answers (top-k rows keep
            the ``k`` largest probabilities and zeros elsewhere), (n,) int64 for labels,
            (n, d) float for embeddings.

        Raises
        ------
        BudgetExhaustedError
            If the batch would take the oracle past its budget; nothing is answered or
            counted.
        DataError
            If ``x`` is empty, not numeric or not finite.
        """
        inputs = as_input_tensor(x)
        n = int(inputs.shape[0])
        remaining = self.queries_remaining
        if remaining is not None and n > remaining:
            raise BudgetExhaustedError(
                MSG_BUDGET.format(n=n, used=self._used, budget=self.budget, remaining=remaining)
            )
        start = time.perf_counter()
        answer = self._answer(inputs)
        seconds = time.perf_counter() - start
        self._used += n
        self._log.append(
            QueryRecord(batch_size=n, cumulative=self._used, time=time.time(), seconds=seconds)
        )
        return answer

    @abc.abstractmethod
    def _answer(self, inputs: torch.Tensor) -> torch.Tensor:
        """Answer a checked batch that fits in the budget."""


class LocalOracle(Oracle):
    """An oracle around a model in this process, optionally behind a defence.

    For a classifier the model's logits go through a softmax; the ``defence`` (if any) is
    applied to those probabilities (or, for ``output="embeddings"``, to the raw outputs),
    and the answer is then formed from the defended outputs: the probabilities themselves,
    their arg-max (``"labels"``), or the ``top_k`` largest of them with zeros elsewhere
    (``"top-k"``, not renormalised). The model runs in eval mode without gradients on its own
    device, ``batch_size`` rows at a time; its train/eval mode is restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        The victim: a classifier returning logits (n, n_classes), or an encoder returning
        embeddings (n, d) for ``output="embeddings"``.
    output : {"probabilities", "labels", "top-k", "embeddings"}, default="probabilities"
        What the oracle answers.
    top_k : int or None, default=None
        Classes returned for ``output="top-k"`` (required then, and only then).
    defence : OutputDefence or None, default=None
        Applied to every batch before the answer is formed.
    budget : int or None, default=None
        Total queries allowed, >= 0; ``None`` for no limit.
    batch_size : int, default=256
        Rows per forward pass.
    client_id : str, default="local"
        The client id passed to the defence.

    Raises
    ------
    ConfigurationError
        At construction, if a parameter is invalid, ``top_k`` is given without
        ``output="top-k"`` (or missing with it), or the defence cannot defend embeddings.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> oracle = LocalOracle(model=nn.Linear(4, 3), output="labels", budget=10)
    >>> oracle.query(torch.randn(6, 4)).shape
    torch.Size([6])
    >>> oracle.queries_used, oracle.queries_remaining
    (6, 4)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "model": InstanceOf(nn.Module, "a torch.nn.Module"),
        "output": Options(*OUTPUT_MODES),
        "top_k": Optional(Integer(low=1)),
        "defence": Optional(InstanceOf(OutputDefence, "an OutputDefence such as Rounding()")),
        "budget": Optional(Integer(low=0)),
        "batch_size": Integer(low=1),
        "client_id": NonEmptyStr(),
    }
    budget: int | None = None

    def __init__(
        self,
        *,
        model: nn.Module,
        output: str = "probabilities",
        top_k: int | None = None,
        defence: OutputDefence | None = None,
        budget: int | None = None,
        batch_size: int = 256,
        client_id: str = "local",
    ) -> None:
        super().__init__()
        self.model = model
        self.output = output
        self.top_k = top_k
        self.defence = defence
        self.budget = budget
        self.batch_size = batch_size
        self.client_id = client_id
        validate_params(self)
        if (self.output == "top-k") != (self.top_k is not None):
            raise ConfigurationError(MSG_TOP_K.format(value=self.top_k, output=self.output))
        defence = self.defence
        if defence is not None and self.output == "embeddings" and defence.probabilities_only:
            raise ConfigurationError(MSG_DEFENCE_EMBEDDINGS.format(defence=type(defence).__name__))

    def clean_outputs(self, x: ArrayLike) -> torch.Tensor:
        """The victim's undefended outputs (probabilities or embeddings), without counting.

        For evaluation by the victim's owner, not for attacks: it bypasses the budget.
        """
        inputs = as_input_tensor(x)
        raw = compute_logits(model=self.model, x=inputs, batch_size=self.batch_size)
        if self.output == "embeddings":
            return raw
        return F.softmax(raw.to(torch.float32), dim=1)

    def _answer(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.clean_outputs(inputs)
        if self.defence is not None:
            outputs = self.defence.apply(
                outputs=outputs, inputs=inputs.cpu(), client_id=self.client_id
            )
        if self.output == "labels":
            return outputs.argmax(dim=1)
        if self.output == "top-k":
            k = min(self.top_k or 1, outputs.shape[1])
            order = torch.sort(outputs, dim=1, descending=True, stable=True).indices[:, :k]
            keep = torch.zeros_like(outputs, dtype=torch.bool).scatter_(1, order, True)
            return torch.where(keep, outputs, torch.zeros_like(outputs))
        return outputs


@runtime_checkable
class QueryAnswer(Protocol):
    """A server's answer to a batch of queries."""

    @property
    def outputs(self) -> np.ndarray:
        """The answers, one row per query."""

    @property
    def remaining(self) -> int | None:
        """Queries the team has left on the task, if the server says."""


@runtime_checkable
class QueryClient(Protocol):
    """Anything that can send a batch of queries to an arena task (``ArenaClient``)."""

    def query(self, task_id: str, x: np.ndarray) -> QueryAnswer:
        """Send ``x`` to the task's victim and return the answer."""


class RemoteOracle(Oracle):
    """An oracle that forwards queries to an arena task through ``client``.

    The server enforces the team's budget; this oracle learns it from the ``remaining`` count
    of each answer (``budget = used + remaining``) and refuses locally, at no cost, a batch
    larger than what the last answer said was left. Inputs are sent as float32 NumPy arrays;
    answers come back as tensors (int64 for integer answers such as labels).

    Parameters
    ----------
    client : QueryClient
        Has ``query(task_id, x) -> answer`` with ``answer.outputs`` (ndarray, one row per
        query) and ``answer.remaining`` (int or None), like ``trustlab.client.ArenaClient``.
    task_id : str
        The arena task to query.
    output : str or None, default=None
        What the task answers, if known (see :data:`OUTPUT_MODES`); attacks infer it from the
        answers otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> class Answer:
    ...     def __init__(self, outputs, remaining):
    ...         self.outputs, self.remaining = outputs, remaining
    >>> class Client:
    ...     left = 100
    ...     def query(self, task_id, x):
    ...         self.left -= len(x)
    ...         return Answer(np.zeros(len(x), dtype=np.int64), self.left)
    >>> oracle = RemoteOracle(client=Client(), task_id="steal-digits")
    >>> oracle.query(np.zeros((5, 1, 8, 8))).shape
    torch.Size([5])
    >>> oracle.budget, oracle.queries_remaining
    (100, 95)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "client": InstanceOf(
            QueryClient,
            "an object with a method query(task_id, x) returning an answer with 'outputs' and "
            "'remaining' (e.g. trustlab.client.ArenaClient)",
        ),
        "task_id": NonEmptyStr(),
        "output": Optional(Options(*OUTPUT_MODES)),
    }

    def __init__(self, *, client: QueryClient, task_id: str, output: str | None = None) -> None:
        super().__init__()
        self.client = client
        self.task_id = task_id
        self.output = output
        validate_params(self)
        self._remaining: int | None = None

    @property
    def budget(self) -> int | None:
        return None if self._remaining is None else self._used + self._remaining

    @property
    def queries_remaining(self) -> int | None:
        return self._remaining

    def _answer(self, inputs: torch.Tensor) -> torch.Tensor:
        array = inputs.detach().cpu().to(torch.float32).numpy()
        answer = self.client.query(self.task_id, array)
        outputs = np.asarray(answer.outputs)
        if outputs.ndim == 0 or outputs.shape[0] != array.shape[0]:
            raise DataError(
                MSG_REMOTE_OUTPUTS.format(
                    n=array.shape[0], shape=outputs.shape, task_id=self.task_id
                )
            )
        remaining = answer.remaining
        self._remaining = None if remaining is None else max(int(remaining), 0)
        if np.issubdtype(outputs.dtype, np.integer):
            return torch.from_numpy(outputs.astype(np.int64))
        return torch.from_numpy(np.ascontiguousarray(outputs, dtype=np.float32))

"""The base class of extraction attacks, their result, and the query and training loop they share.

An extraction attack spends a query budget on an :class:`~trustlab.extraction.oracle.Oracle`
and trains a surrogate model (the copy) on the answers. Attacks differ only in *which* inputs
they query; :class:`ExtractionAttack` supplies the rest: it infers what the oracle answers
(labels, probabilities or embeddings), keeps the transfer set, trains the surrogate
reproducibly and records a fidelity history.
"""

from __future__ import annotations

import abc
import dataclasses
import warnings
from typing import ClassVar

import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, check_same_length
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import (
    MAX_SEED,
    Constraint,
    InstanceOf,
    Integer,
    Options,
    Real,
    Seed,
    check_param,
)
from trustlab.core.progress import ProgressCallback, report
from trustlab.core.seeding import make_generator
from trustlab.core.typing import ArrayLike
from trustlab.extraction._surrogate import (
    EMBEDDING_LOSSES,
    MSG_ANSWER_SHAPE,
    TARGETS,
    fidelity,
    fit_surrogate,
)
from trustlab.extraction.defences.base import declared_repr
from trustlab.extraction.oracle import Oracle

__all__ = [
    "EMBEDDING_LOSSES",
    "TARGETS",
    "ExtractionAttack",
    "ExtractionResult",
    "HistoryPoint",
]

#: Rows summing to at most this (and >= 0) are read as probabilities when the oracle is silent.
PROBABILITY_SUM_TOLERANCE = 1e-3

MSG_NO_QUERIES = (
    "{owner} spent no queries: the oracle has no budget left ({remaining} remaining). Use a "
    "fresh oracle or a smaller budget."
)
MSG_EVAL = (
    "eval_x and eval_outputs must be given together: eval_outputs are the victim's outputs on "
    "eval_x (labels, probabilities or embeddings), used only to report fidelity."
)
MSG_ENCODER_ONLY_CLASSIFIER = (
    "{owner} needs a classifier oracle (labels or probabilities); this oracle answers "
    "embeddings. {hint}"
)

#: The arguments of :meth:`ExtractionAttack.extract`, checked when it is called.
EXTRACT_CONSTRAINTS: dict[str, Constraint] = {
    "oracle": InstanceOf(Oracle, "an Oracle (LocalOracle, RemoteOracle)"),
    "surrogate": InstanceOf(nn.Module, "a torch.nn.Module"),
    "budget": Integer(low=1),
}


@dataclasses.dataclass(frozen=True)
class HistoryPoint:
    """The state of an extraction after a training round.

    Attributes
    ----------
    queries : int
        Queries spent so far.
    fidelity : float or None
        Fidelity on the evaluation set, if one was given: label agreement with the victim for
        classifiers, mean cosine similarity of the embeddings for encoders.
    """

    queries: int
    fidelity: float | None


@dataclasses.dataclass
class ExtractionResult:
    """What an extraction produced.

    Attributes
    ----------
    model : torch.nn.Module
        The trained copy (the surrogate passed in, trained in place).
    history : list of HistoryPoint
        One point per training round, in order.
    queries_used : int
        Queries this extraction spent.
    transfer_x : torch.Tensor, shape (queries_used, ...)
        The queried inputs.
    transfer_y : torch.Tensor
        The oracle's answers to them, as received.
    target : str
        What the copy was trained on: ``"labels"``, ``"probabilities"`` or ``"embeddings"``.
    notes : list of str
        What the user should know about the run, e.g. that it spent fewer queries than its
        budget because its pool ran out (each was also issued as a warning).
    """

    model: nn.Module
    history: list[HistoryPoint]
    queries_used: int
    transfer_x: torch.Tensor
    transfer_y: torch.Tensor
    target: str
    notes: list[str] = dataclasses.field(default_factory=list)


class _Session:
    """One extraction run: the budget, the transfer set, the inferred target and the history."""

    def __init__(
        self,
        *,
        oracle: Oracle,
        budget: int,
        owner: str,
        evaluation: tuple[torch.Tensor, torch.Tensor] | None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.oracle = oracle
        self.budget = budget
        self.owner = owner
        self.evaluation = evaluation
        self.progress = progress
        self.notes: list[str] = []
        self.target: str | None = None
        self.xs: list[torch.Tensor] = []
        self.answers: list[torch.Tensor] = []
        self.history: list[HistoryPoint] = []
        self.spent = 0

    @property
    def remaining(self) -> int:
        left = self.budget - self.spent
        oracle_left = self.oracle.queries_remaining
        return max(0, left if oracle_left is None else min(left, oracle_left))

    def ask(self, x: torch.Tensor) -> torch.Tensor:
        """Query as many rows of ``x`` as the budget allows; return their answers."""
        take = min(self.remaining, x.shape[0])
        if take == 0:
            return torch.empty(0)
        rows = x[:take].detach().cpu()
        answer = self.oracle.query(rows)
        if answer.shape[0] != take or answer.dim() not in (1, 2):
            raise DataError(MSG_ANSWER_SHAPE.format(n=take, shape=tuple(answer.shape)))
        if self.target is None:
            self.target = _infer_target(answer, self.oracle.output)
        self.xs.append(rows)
        self.answers.append(answer.detach().cpu())
        self.spent += take
        report(self.progress, stage="queries", done=self.spent, total=self.budget)
        return answer

    def note(self, message: str) -> None:
        """Warn the user and keep the message for :attr:`ExtractionResult.notes`."""
        warnings.warn(message, UserWarning, stacklevel=4)
        self.notes.append(message)

    def transfer_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.xs:
            raise DataError(
                MSG_NO_QUERIES.format(owner=self.owner, remaining=self.oracle.queries_remaining)
            )
        return torch.cat(self.xs), torch.cat(self.answers)

    def record(self, surrogate: nn.Module) -> None:
        """Add a history point: the queries spent and the fidelity on the evaluation set."""
        score = None
        if self.evaluation is not None:
            score = fidelity(surrogate, *self.evaluation, target=self.target or "labels")
        self.history.append(HistoryPoint(queries=self.spent, fidelity=score))


def _infer_target(answer: torch.Tensor, output: str | None) -> str:
    if output == "embeddings":
        return "embeddings"
    if output == "labels" or answer.dim() == 1 or not answer.is_floating_point():
        return "labels"
    if output in ("probabilities", "top-k"):
        return "probabilities"
    sums = answer.sum(dim=1)
    looks_like_probabilities = bool((answer >= 0).all()) and bool(
        (sums <= 1 + PROBABILITY_SUM_TOLERANCE).all()
    )
    return "probabilities" if looks_like_probabilities else "embeddings"


class ExtractionAttack(abc.ABC):
    """Base class of model-extraction attacks.

    Subclasses choose the inputs to query in :meth:`_run`; the base class checks the
    arguments, keeps the transfer set within the budget and trains the surrogate.

    Training runs through :func:`trustlab.core.training.train`: labels are fitted with
    cross-entropy; probability answers (also rounded, noisy or top-k truncated ones,
    renormalised to sum to one) with the soft cross-entropy ``-sum_k y_k log softmax(s(x))_k``,
    as in Knockoff Nets; embeddings by regression, with the mean squared error or
    ``1 - cosine similarity`` (``embedding_loss``). Adam with ``lr``; shuffling and dropout are
    seeded from ``seed``. Iterative attacks keep training the same surrogate between rounds (a
    warm start) rather than re-initialising it.

    Hyperparameters are declared in ``_parameter_constraints`` (the shared ones here, each
    attack's own on its class) and checked at construction: a subclass stores its arguments
    and ends ``__init__`` with :func:`~trustlab.core.params.validate_params`.

    Parameters
    ----------
    epochs : int, default=30
        Passes over the transfer set per training round, >= 1.
    lr : float, default=1e-3
        Learning rate of Adam, > 0.
    batch_size : int, default=64
        Training batch size, >= 1.
    seed : int, default=0
        Seed of the attack's sampling and of training, in [0, 2**32 - 1].
    embedding_loss : {"mse", "cosine"}, default="mse"
        Regression loss for encoder oracles.
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "epochs": Integer(low=1),
        "lr": Real(low=0, closed="neither"),
        "batch_size": Integer(low=1),
        "seed": Seed,
        "embedding_loss": Options(*EMBEDDING_LOSSES),
    }

    def __init__(
        self,
        *,
        epochs: int = 30,
        lr: float = 1e-3,
        batch_size: int = 64,
        seed: int = 0,
        embedding_loss: str = "mse",
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.embedding_loss = embedding_loss

    def extract(
        self,
        *,
        oracle: Oracle,
        surrogate: nn.Module,
        budget: int,
        eval_x: ArrayLike | None = None,
        eval_outputs: ArrayLike | None = None,
        progress: ProgressCallback | None = None,
    ) -> ExtractionResult:
        """Spend at most ``budget`` queries on ``oracle`` and train ``surrogate`` on them.

        Parameters
        ----------
        oracle : Oracle
            Query access to the victim; its own budget also limits the attack.
        surrogate : torch.nn.Module
            The copy to train, in place; it must return as many outputs as the oracle's
            answers have columns (classes or embedding dimensions).
        budget : int
            Queries the attack may spend, >= 1.
        eval_x : array-like of shape (m, ...), optional
            Inputs on which to report fidelity after each round (never queried).
        eval_outputs : array-like, optional
            The victim's outputs on ``eval_x``: labels (m,), probabilities (m, n_classes) or
            embeddings (m, d).
        progress : callable, optional
            Receives a :class:`~trustlab.core.progress.ProgressEvent` after each batch of
            queries (stage ``"queries"``, the queries spent, the budget) and after each
            training epoch of the copy (stage ``"epoch"``).

        Returns
        -------
        ExtractionResult
            The trained copy, the fidelity history and the transfer set.

        Raises
        ------
        ConfigurationError
            If an argument is invalid or the method does not apply to the oracle.
        DataError
            If the oracle's answers, the pool or the evaluation set are malformed.
        BudgetExhaustedError
            Never for the attack's own budget; only if the oracle is shared and its budget
            changes during the attack.
        """
        owner = type(self).__name__
        where = f"{owner}.extract"
        for name, value in (("oracle", oracle), ("surrogate", surrogate)):
            check_param(value, EXTRACT_CONSTRAINTS[name], name=name, owner=where)
        budget = check_param(budget, EXTRACT_CONSTRAINTS["budget"], name="budget", owner=where)
        session = _Session(
            oracle=oracle,
            budget=budget,
            owner=owner,
            evaluation=_evaluation_set(eval_x, eval_outputs),
            progress=progress,
        )
        self._run(session=session, surrogate=surrogate)
        x, y = session.transfer_set()
        return ExtractionResult(
            model=surrogate,
            history=list(session.history),
            queries_used=session.spent,
            transfer_x=x,
            transfer_y=y,
            target=session.target or "labels",
            notes=list(session.notes),
        )

    @abc.abstractmethod
    def _run(self, *, session: _Session, surrogate: nn.Module) -> None:
        """Query through ``session.ask`` and call :meth:`_train` after each round."""

    # Helpers for subclasses -----------------------------------------------------------------

    def _require_classifier(self, session: _Session, hint: str) -> None:
        if session.target == "embeddings":
            raise ConfigurationError(
                MSG_ENCODER_ONLY_CLASSIFIER.format(owner=type(self).__name__, hint=hint)
            )

    def _train(self, *, session: _Session, surrogate: nn.Module, round_index: int = 0) -> None:
        """Train ``surrogate`` on the whole transfer set for ``epochs`` and record history."""
        x, answers = session.transfer_set()
        fit_surrogate(
            surrogate,
            x,
            answers,
            target=session.target or "labels",
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            seed=(self.seed + round_index) % (MAX_SEED + 1),
            embedding_loss=self.embedding_loss,
            owner=type(self).__name__,
            progress=session.progress,
        )
        session.record(surrogate)

    def _generator(self) -> torch.Generator:
        return make_generator(self.seed)

    def __repr__(self) -> str:
        return declared_repr(self)


def _evaluation_set(
    eval_x: ArrayLike | None, eval_outputs: ArrayLike | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    if eval_x is None and eval_outputs is None:
        return None
    if eval_x is None or eval_outputs is None:
        raise DataError(MSG_EVAL)
    x = as_input_tensor(eval_x)
    y = as_input_tensor(eval_outputs)
    check_same_length(
        first="eval_x", n_first=x.shape[0], second="eval_outputs", n_second=y.shape[0]
    )
    return x, y

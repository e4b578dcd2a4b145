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
import math

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import as_input_tensor, check_same_length, model_device_and_dtype
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.typing import ArrayLike
from trustlab.extraction._checks import check_choice, check_float, check_int
from trustlab.extraction.oracle import Oracle

__all__ = [
    "EMBEDDING_LOSSES",
    "TARGETS",
    "ExtractionAttack",
    "ExtractionResult",
    "HistoryPoint",
]

#: What a surrogate is trained to reproduce.
TARGETS = ("labels", "probabilities", "embeddings")
#: Regression losses for encoders.
EMBEDDING_LOSSES = ("mse", "cosine")
#: Rows summing to at most this (and >= 0) are read as probabilities when the oracle is silent.
PROBABILITY_SUM_TOLERANCE = 1e-3

MSG_SURROGATE = "The 'surrogate' argument must be a torch.nn.Module. Got {what} instead."
MSG_ORACLE = "The 'oracle' argument must be an Oracle (LocalOracle, RemoteOracle). Got {what}."
MSG_BUDGET = "The 'budget' argument of {owner}.extract must be an int >= 1. Got {value!r} instead."
MSG_NO_QUERIES = (
    "{owner} spent no queries: the oracle has no budget left ({remaining} remaining). Use a "
    "fresh oracle or a smaller budget."
)
MSG_ANSWER_SHAPE = (
    "The oracle answered {n} queries with shape {shape}; expected labels (n,), probabilities "
    "(n, n_classes) or embeddings (n, d)."
)
MSG_EVAL = (
    "eval_x and eval_outputs must be given together: eval_outputs are the victim's outputs on "
    "eval_x (labels, probabilities or embeddings), used only to report fidelity."
)
MSG_ENCODER_ONLY_CLASSIFIER = (
    "{owner} needs a classifier oracle (labels or probabilities); this oracle answers "
    "embeddings. {hint}"
)
MSG_SURROGATE_OUTPUT = (
    "The surrogate returned shape {shape} for {n} inputs, but the oracle's answers need "
    "(n, {width}); build the surrogate with {width} outputs."
)

MSG_DIVERGED = "Training the surrogate diverged (loss {loss}); lower the learning rate (lr={lr})."


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
    """

    model: nn.Module
    history: list[HistoryPoint]
    queries_used: int
    transfer_x: torch.Tensor
    transfer_y: torch.Tensor
    target: str


class _Session:
    """The queries of one extraction: budget, transfer set and the inferred target."""

    def __init__(self, *, oracle: Oracle, budget: int, owner: str, output: str | None) -> None:
        self.oracle = oracle
        self.budget = budget
        self.owner = owner
        self.output = output
        self.target: str | None = None
        self.xs: list[torch.Tensor] = []
        self.answers: list[torch.Tensor] = []
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
            self.target = _infer_target(answer, self.output)
        self.xs.append(rows)
        self.answers.append(answer.detach().cpu())
        self.spent += take
        return answer

    def transfer_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.xs:
            raise DataError(
                MSG_NO_QUERIES.format(owner=self.owner, remaining=self.oracle.queries_remaining)
            )
        return torch.cat(self.xs), torch.cat(self.answers)


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


def _soft_targets(answers: torch.Tensor) -> torch.Tensor:
    """Rows of (possibly truncated or rounded) probabilities, renormalised to sum to one."""
    values = answers.to(torch.float32).clamp_min(0.0)
    total = values.sum(dim=1, keepdim=True)
    uniform = torch.full_like(values, 1.0 / values.shape[1])
    return torch.where(total > 0, values / total.clamp_min(1e-12), uniform)


class ExtractionAttack(abc.ABC):
    """Base class of model-extraction attacks.

    Subclasses choose the inputs to query in :meth:`_run`; the base class checks the
    arguments, keeps the transfer set within the budget and trains the surrogate.

    Training: labels are fitted with cross-entropy; probability answers (also rounded,
    noisy or top-k truncated ones, renormalised to sum to one) with the soft cross-entropy
    ``-sum_k y_k log softmax(s(x))_k``, as in Knockoff Nets; embeddings by regression, with
    the mean squared error or ``1 - cosine similarity`` (``embedding_loss``). Adam with
    ``lr``; shuffling and dropout are seeded from ``seed``. Iterative attacks keep training the
    same surrogate between rounds (a warm start) rather than re-initialising it.

    Parameters
    ----------
    epochs : int, default=30
        Passes over the transfer set per training round.
    lr : float, default=1e-3
        Learning rate of Adam.
    batch_size : int, default=64
        Training batch size.
    seed : int, default=0
        Seed of the attack's sampling and of training.
    embedding_loss : {"mse", "cosine"}, default="mse"
        Regression loss for encoder oracles.
    """

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

        Returns
        -------
        ExtractionResult
            The trained copy, the fidelity history and the transfer set.

        Raises
        ------
        ConfigurationError
            If a hyperparameter is invalid or the method does not apply to the oracle.
        DataError
            If the oracle's answers, the pool or the evaluation set are malformed.
        BudgetExhaustedError
            Never for the attack's own budget; only if the oracle is shared and its budget
            changes during the attack.
        """
        owner = type(self).__name__
        self._check_common(owner)
        self._check_params()
        if not isinstance(oracle, Oracle):
            raise ConfigurationError(MSG_ORACLE.format(what=type(oracle).__name__))
        if not isinstance(surrogate, nn.Module):
            raise ConfigurationError(MSG_SURROGATE.format(what=type(surrogate).__name__))
        budget = _check_budget(budget, owner)
        evaluation = _evaluation_set(eval_x, eval_outputs)
        session = _Session(oracle=oracle, budget=budget, owner=owner, output=oracle.output)
        self.surrogate_ = surrogate
        self.session_ = session
        self.evaluation_ = evaluation
        self.history_: list[HistoryPoint] = []
        self._run(session=session, surrogate=surrogate)
        x, y = session.transfer_set()
        return ExtractionResult(
            model=surrogate,
            history=list(self.history_),
            queries_used=session.spent,
            transfer_x=x,
            transfer_y=y,
            target=session.target or "labels",
        )

    def _check_common(self, owner: str) -> None:
        check_int(self.epochs, name="epochs", owner=owner)
        check_float(self.lr, name="lr", owner=owner, low=0.0)
        check_int(self.batch_size, name="batch_size", owner=owner)
        check_int(self.seed, name="seed", owner=owner, low=0)
        check_choice(
            self.embedding_loss, name="embedding_loss", owner=owner, choices=EMBEDDING_LOSSES
        )

    def _check_params(self) -> None:  # noqa: B027 - optional hook
        """Check the attack's own hyperparameters (raise ConfigurationError)."""

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
        target = session.target or "labels"
        _fit(
            surrogate,
            x,
            answers,
            target=target,
            epochs=int(self.epochs),
            lr=float(self.lr),
            batch_size=int(self.batch_size),
            seed=int(self.seed) + round_index,
            embedding_loss=self.embedding_loss,
        )
        fidelity = None
        if self.evaluation_ is not None:
            fidelity = _fidelity(surrogate, *self.evaluation_, target=target)
        self.history_.append(HistoryPoint(queries=session.spent, fidelity=fidelity))

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.seed))

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}"
            for name, value in vars(self).items()
            if not name.endswith("_") and not isinstance(value, torch.Tensor)
        )
        return f"{type(self).__name__}({fields})"


def _check_budget(budget: object, owner: str) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigurationError(MSG_BUDGET.format(owner=owner, value=budget))
    return budget


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


def surrogate_outputs(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    """The surrogate's raw outputs on ``x`` in eval mode, without gradients, on the CPU."""
    device, dtype = model_device_and_dtype(model)
    previous = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [
                model(x[i : i + batch_size].to(device=device, dtype=dtype)).detach().cpu()
                for i in range(0, x.shape[0], batch_size)
            ]
    finally:
        model.train(previous)
    return torch.cat(parts).to(torch.float32)


def _fidelity(model: nn.Module, x: torch.Tensor, reference: torch.Tensor, *, target: str) -> float:
    outputs = surrogate_outputs(model, x)
    if target == "embeddings":
        if reference.dim() != 2 or reference.shape[1] != outputs.shape[1]:
            raise DataError(MSG_ANSWER_SHAPE.format(n=x.shape[0], shape=tuple(reference.shape)))
        return float(F.cosine_similarity(outputs, reference.to(torch.float32), dim=1).mean())
    labels = reference if reference.dim() == 1 else reference.argmax(dim=1)
    return float((outputs.argmax(dim=1) == labels.long()).to(torch.float64).mean())


def _loss(
    outputs: torch.Tensor, targets: torch.Tensor, *, target: str, embedding_loss: str
) -> torch.Tensor:
    if target == "labels":
        return F.cross_entropy(outputs, targets)
    if target == "probabilities":
        return -(targets * F.log_softmax(outputs, dim=1)).sum(dim=1).mean()
    if embedding_loss == "cosine":
        return (1.0 - F.cosine_similarity(outputs, targets, dim=1)).mean()
    return F.mse_loss(outputs, targets)


def _fit(
    model: nn.Module,
    x: torch.Tensor,
    answers: torch.Tensor,
    *,
    target: str,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    embedding_loss: str,
) -> None:
    device, dtype = model_device_and_dtype(model)
    if target == "labels":
        targets = answers.long() if answers.dim() == 1 else answers.argmax(dim=1)
    elif target == "probabilities":
        targets = _soft_targets(answers)
    else:
        targets = answers.to(torch.float32)
    width = None if target == "labels" and answers.dim() == 1 else answers.shape[1]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    previous = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for epoch in range(epochs):
                order = torch.randperm(x.shape[0], generator=generator)
                for start in range(0, x.shape[0], batch_size):
                    index = order[start : start + batch_size]
                    xb = x[index].to(device=device, dtype=dtype)
                    yb = targets[index].to(device)
                    if yb.is_floating_point():
                        yb = yb.to(dtype)
                    outputs = model(xb)
                    if (
                        epoch == 0
                        and start == 0
                        and width is not None
                        and (outputs.dim() != 2 or outputs.shape[1] != width)
                    ):
                        raise DataError(
                            MSG_SURROGATE_OUTPUT.format(
                                shape=tuple(outputs.shape), n=xb.shape[0], width=width
                            )
                        )
                    loss = _loss(outputs, yb, target=target, embedding_loss=embedding_loss)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if not math.isfinite(float(loss.detach())):
                        raise ConfigurationError(MSG_DIVERGED.format(loss=float(loss), lr=lr))
    finally:
        model.train(previous)

"""ActiveThief: active selection of the queries from an unlabelled pool (Pal et al., 2020)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import as_input_tensor
from trustlab.core.params import Constraint, Integer, Optional, Options, validate_params
from trustlab.core.typing import ArrayLike
from trustlab.extraction._surrogate import surrogate_outputs
from trustlab.extraction.base import ExtractionAttack, _Session
from trustlab.extraction.registry import register_attack

__all__ = ["STRATEGIES", "ActiveThief"]

STRATEGIES = ("uncertainty", "k-center")
#: Default share of the budget spent on the random initial set and on each later round.
DEFAULT_FRACTION = 0.1


@register_attack("active-thief")
class ActiveThief(ExtractionAttack):
    """ActiveThief (Pal et al., 2020): let the copy pick the most useful pool inputs.

    The attack queries a random ``initial`` subset of the unlabelled ``pool``, trains the copy,
    and then repeats: run the copy on the unqueried pool (free, it is the attacker's model),
    select ``step`` inputs, query them and train again, until the budget is spent.

    * ``"uncertainty"``: the inputs whose copy prediction has the highest entropy
      ``-sum_k p_k log p_k`` (Lewis and Gale, 1994).
    * ``"k-center"``: the greedy k-center core set of Sener and Savarese (2018) in the space
      of the copy's outputs (probability vectors for classifiers, embeddings for encoders):
      repeatedly take the pool input farthest (L2) from every input queried or selected so far.

    Departures from the paper: the copy is trained further after each round (warm start)
    instead of from scratch, and the DFAL and DFAL+k-center strategies are not implemented.
    Uncertainty needs a classifier; k-center also works for encoders.

    Threat model: black-box query access; the attacker owns unlabelled natural inputs
    (the "thief data set"), not the victim's training data.

    Parameters
    ----------
    strategy : {"uncertainty", "k-center"}, default="uncertainty"
        The selection rule.
    pool : array-like of shape (n_pool, ...)
        The attacker's unlabelled inputs.
    initial : int or None, default=None
        Size of the random initial set; ``None`` for 10% of the budget (at least 1).
    step : int or None, default=None
        Inputs selected per round; ``None`` for 10% of the budget (at least 1).
    epochs, lr, batch_size, seed, embedding_loss
        See :class:`~trustlab.extraction.base.ExtractionAttack`.

    References
    ----------
    .. [1] S. Pal, Y. Gupta, A. Shukla, A. Kanade, S. Shevade and V. Ganapathy, "ActiveThief:
       Model Extraction Using Active Learning and Unannotated Public Data", AAAI 2020.
    .. [2] O. Sener and S. Savarese, "Active Learning for Convolutional Neural Networks: A
       Core-Set Approach", ICLR 2018.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from trustlab.extraction.oracle import LocalOracle
    >>> _ = torch.manual_seed(0)
    >>> attack = ActiveThief(strategy="k-center", pool=torch.randn(80, 4), epochs=1)
    >>> result = attack.extract(oracle=LocalOracle(model=nn.Linear(4, 3)),
    ...                         surrogate=nn.Linear(4, 3), budget=40)
    >>> result.queries_used, len(result.history)
    (40, 10)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "strategy": Options(*STRATEGIES),
        "initial": Optional(Integer(low=1)),
        "step": Optional(Integer(low=1)),
    }

    def __init__(
        self,
        *,
        strategy: str = "uncertainty",
        pool: ArrayLike,
        initial: int | None = None,
        step: int | None = None,
        epochs: int = 30,
        lr: float = 1e-3,
        batch_size: int = 64,
        seed: int = 0,
        embedding_loss: str = "mse",
    ) -> None:
        super().__init__(
            epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, embedding_loss=embedding_loss
        )
        self.strategy = strategy
        self.pool = pool
        self.initial = initial
        self.step = step
        validate_params(self)

    def _run(self, *, session: _Session, surrogate: nn.Module) -> None:
        pool = as_input_tensor(self.pool)
        default = max(1, int(DEFAULT_FRACTION * session.budget))
        initial = default if self.initial is None else self.initial
        step = default if self.step is None else self.step
        order = torch.randperm(pool.shape[0], generator=self._generator())
        queried = torch.zeros(pool.shape[0], dtype=torch.bool)
        first = order[: min(initial, session.remaining)]
        session.ask(pool[first])
        queried[first] = True
        if self.strategy == "uncertainty":
            self._require_classifier(session, "Use strategy='k-center' for encoders.")
        self._train(session=session, surrogate=surrogate)
        round_index = 1
        while session.remaining > 0 and not bool(queried.all()):
            size = min(step, session.remaining, int((~queried).sum()))
            outputs = surrogate_outputs(surrogate, pool)
            if session.target != "embeddings":
                outputs = F.softmax(outputs, dim=1)
            if self.strategy == "uncertainty":
                chosen = _most_uncertain(outputs, queried, size)
            else:
                chosen = _k_center(outputs, queried, size)
            session.ask(pool[chosen])
            queried[chosen] = True
            self._train(session=session, surrogate=surrogate, round_index=round_index)
            round_index += 1


def _most_uncertain(probs: torch.Tensor, queried: torch.Tensor, size: int) -> torch.Tensor:
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)
    entropy[queried] = -float("inf")
    # A stable sort breaks ties towards the lower pool index, so selection is reproducible.
    return torch.sort(entropy, descending=True, stable=True).indices[:size]


def _k_center(features: torch.Tensor, queried: torch.Tensor, size: int) -> torch.Tensor:
    features = features.to(torch.float64)
    centres = features[queried]
    nearest = torch.cdist(features, centres).min(dim=1).values
    nearest[queried] = -1.0
    chosen = []
    for _ in range(size):
        pick = int(torch.argmax(nearest))
        chosen.append(pick)
        distance = torch.linalg.vector_norm(features - features[pick], dim=1)
        nearest = torch.minimum(nearest, distance)
        nearest[pick] = -1.0
        nearest[queried] = -1.0
    return torch.tensor(chosen, dtype=torch.long)

"""Plain distillation of a victim on a fixed query set."""

from __future__ import annotations

import torch
from torch import nn

from trustlab.core.checks import as_input_tensor
from trustlab.core.params import validate_params
from trustlab.core.typing import ArrayLike
from trustlab.extraction.base import ExtractionAttack, _Session
from trustlab.extraction.registry import register_attack

__all__ = ["Distillation"]


@register_attack("distillation")
class Distillation(ExtractionAttack):
    """Query the victim on a given set of inputs and train the copy on its answers.

    The simplest extraction (knowledge distillation through the query interface, Hinton et
    al., 2015; Tramèr et al., 2016): up to ``budget`` rows of ``query_x`` are queried (a
    random subset, drawn with ``seed``, if there are more), then the surrogate is trained once
    on all answers. With ``query_x`` drawn uniformly at random from the input domain it is the
    random-query baseline every other attack should beat. Works for classifiers (labels or
    probabilities) and encoders (embedding regression).

    Threat model: black-box query access to the victim's outputs; the attacker has unlabelled
    inputs (or none, and uses noise).

    Parameters
    ----------
    query_x : array-like of shape (n, ...)
        The inputs to query.
    epochs, lr, batch_size, seed, embedding_loss
        See :class:`~trustlab.extraction.base.ExtractionAttack`.

    References
    ----------
    .. [1] G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a Neural Network",
       NeurIPS Deep Learning Workshop 2015.
    .. [2] F. Tramèr et al., "Stealing Machine Learning Models via Prediction APIs",
       USENIX Security 2016.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from trustlab.extraction.oracle import LocalOracle
    >>> _ = torch.manual_seed(0)
    >>> oracle = LocalOracle(model=nn.Linear(4, 3))
    >>> attack = Distillation(query_x=torch.randn(100, 4), epochs=2)
    >>> result = attack.extract(oracle=oracle, surrogate=nn.Linear(4, 3), budget=50)
    >>> result.queries_used, result.target
    (50, 'probabilities')
    """

    def __init__(
        self,
        *,
        query_x: ArrayLike,
        epochs: int = 30,
        lr: float = 1e-3,
        batch_size: int = 64,
        seed: int = 0,
        embedding_loss: str = "mse",
    ) -> None:
        super().__init__(
            epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, embedding_loss=embedding_loss
        )
        self.query_x = query_x
        validate_params(self)

    def _run(self, *, session: _Session, surrogate: nn.Module) -> None:
        x = as_input_tensor(self.query_x)
        n = min(session.remaining, x.shape[0])
        if n < x.shape[0]:
            x = x[torch.randperm(x.shape[0], generator=self._generator())[:n]]
        session.ask(x)
        self._train(session=session, surrogate=surrogate)

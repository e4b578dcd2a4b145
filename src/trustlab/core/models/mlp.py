"""A multilayer perceptron for tabular data."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from trustlab.core.models._base import register_architecture
from trustlab.core.params import Integer, IntList, Real, check_param

__all__ = ["MLP"]


@register_architecture("mlp")
class MLP(nn.Module):
    """Fully connected layers with ReLU and dropout, for tabular classification.

    ``[linear -> ReLU -> dropout] * len(hidden) -> linear``. The state-dict keys are
    ``hidden.{i}.weight/bias`` and ``head.weight/bias`` whatever the dropout, so weights
    stay interchangeable between runs with different ``dropout``. With ``hidden=[]`` it is
    multinomial logistic regression.

    Parameters
    ----------
    in_features : int
        Number of input features (columns).
    num_classes : int, default=2
        Number of output logits.
    hidden : list of int, default=[64, 64]
        Width of each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden layer, in ``[0, 1)``.

    Shapes
    ------
    - input: ``(N, in_features)``
    - output: ``(N, num_classes)`` logits

    Examples
    --------
    >>> import torch
    >>> MLP(in_features=5, hidden=[8])(torch.zeros(3, 5)).shape
    torch.Size([3, 2])
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int = 2,
        hidden: Sequence[int] = (64, 64),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = check_param(in_features, Integer(low=1), name="in_features", owner="mlp")
        self.num_classes = check_param(num_classes, Integer(low=1), name="num_classes", owner="mlp")
        widths = check_param(hidden, IntList(low=1), name="hidden", owner="mlp")
        self.dropout_p = check_param(
            dropout, Real(low=0, high=1, closed="left"), name="dropout", owner="mlp"
        )
        sizes = [in_features, *widths]
        self.hidden = nn.ModuleList(
            nn.Linear(n_in, n_out) for n_in, n_out in itertools.pairwise(sizes)
        )
        self.head = nn.Linear(sizes[-1], num_classes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(self.dropout_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = self.dropout(self.relu(layer(x)))
        return self.head(x)

"""The constraint moments of the reductions approach (Agarwal et al., 2018), as in Fairlearn.

A moment maps a classifier's predictions ``h(x_i)`` in [0, 1] on the training rows to a vector
``gamma`` of constraint values, each required to stay below ``bound``:

* parity criteria (demographic parity, equalized odds, equal opportunity): for every event
  ``e`` (all rows, or the rows with ``y = 0`` / ``y = 1``) and group ``a``, the signed
  differences ``+-(E[h | A=a, e] - E[h | e])``;
* bounded group loss: for every group, its 0-1 error ``E[|h - y| | A=a]``.

``signed_weights(lam)`` is minus ``n`` times the gradient of ``error + lam . gamma`` in each
prediction: a classifier fitted to labels ``sign > 0`` with weights ``|signed|`` minimises the
Lagrangian (the cost-sensitive reduction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trustlab.core.typing import FloatArray, IntArray

#: The criteria the reductions accept.
REDUCTION_CRITERIA = (
    "demographic_parity",
    "equalized_odds",
    "equal_opportunity",
    "bounded_group_loss",
)

_EVENTS: dict[str, tuple[int | None, ...]] = {
    "demographic_parity": (None,),
    "equalized_odds": (0, 1),
    "equal_opportunity": (1,),
    "bounded_group_loss": (None,),
}


@dataclass(frozen=True)
class Moments:
    """Constraint moments of one criterion on fixed training rows."""

    criterion: str
    y: IntArray
    groups: IntArray
    n_groups: int
    bound: float

    @property
    def events(self) -> tuple[int | None, ...]:
        return _EVENTS[self.criterion]

    @property
    def n_constraints(self) -> int:
        if self.criterion == "bounded_group_loss":
            return self.n_groups
        return 2 * len(self.events) * self.n_groups

    def _event_rows(self, label: int | None) -> np.ndarray:
        return np.ones(len(self.y), dtype=bool) if label is None else self.y == label

    def gamma(self, h: FloatArray) -> FloatArray:
        """The moment vector of predictions ``h`` (shape (n_rows,), values in [0, 1])."""
        if self.criterion == "bounded_group_loss":
            loss = np.abs(h - self.y)
            return np.array([loss[self.groups == a].mean() for a in range(self.n_groups)])
        values: list[float] = []
        for label in self.events:
            rows = self._event_rows(label)
            overall = h[rows].mean()
            for a in range(self.n_groups):
                cell = rows & (self.groups == a)
                diff = h[cell].mean() - overall if cell.any() else 0.0
                values.extend([diff, -diff])
        return np.array(values)

    def signed_weights(self, lam: FloatArray) -> FloatArray:
        """Minus ``n`` times the gradient of ``error(h) + lam . gamma(h)`` in each ``h(x_i)``."""
        n = len(self.y)
        weights = (2.0 * self.y - 1.0).astype(np.float64)
        if self.criterion == "bounded_group_loss":
            for a in range(self.n_groups):
                cell = self.groups == a
                weights[cell] += lam[a] * (2.0 * self.y[cell] - 1.0) * n / max(cell.sum(), 1)
            return weights
        k = 0
        for label in self.events:
            rows = self._event_rows(label)
            n_event = max(int(rows.sum()), 1)
            for a in range(self.n_groups):
                net = lam[k] - lam[k + 1]
                cell = rows & (self.groups == a)
                weights[cell] -= net * n / max(int(cell.sum()), 1)
                weights[rows] += net * n / n_event
                k += 2
        return weights

    def worst_violation(self, gamma: FloatArray) -> float:
        """The largest ``gamma - bound``."""
        return float(np.max(gamma - self.bound))

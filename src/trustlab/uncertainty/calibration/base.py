"""The base class of post-hoc calibrators and their registry.

A calibrator learns a map from logits to calibrated logits on a held-out calibration split:
``fit(*, logits, y)`` returns ``self`` (fitted state ends in ``_``), ``transform(*, logits)``
returns calibrated logits and ``predict_proba(*, logits)`` their softmax. Both fit by
minimising the negative log-likelihood with L-BFGS in float64, as Guo et al. (2017) do.
"""

from __future__ import annotations

import abc
from typing import ClassVar, TypeVar

import torch

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Constraint, Integer, Real
from trustlab.core.registry import Registry
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.uncertainty._inputs import as_labels, as_matrix, softmax

__all__ = ["CALIBRATORS", "MSG_NOT_FITTED", "Calibrator"]

MSG_NOT_FITTED = "{owner} is not fitted yet: call fit(logits=..., y=...) on a calibration split."
MSG_CLASSES = (
    "{owner} was fitted on logits with {fitted} classes; these logits have {given}. Pass "
    "logits of the same model."
)

Self = TypeVar("Self", bound="Calibrator")

#: Calibrators by name; ``CALIBRATORS.build("temperature")``.
CALIBRATORS: Registry[type[Calibrator]] = Registry("calibrator")


class Calibrator(abc.ABC):
    """Post-hoc calibration of a classifier's logits, fitted on a calibration split.

    Parameters
    ----------
    max_iter : int, default 200
        L-BFGS iterations.
    tol : float, default 1e-10
        L-BFGS tolerance on the gradient and on changes of the loss.
    """

    name: ClassVar[str]
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "max_iter": Integer(low=1),
        "tol": Real(low=0, closed="neither"),
    }

    max_iter: int
    tol: float

    def fit(self: Self, *, logits: ArrayLike, y: ArrayLike) -> Self:
        """Fit the map on a calibration split.

        Parameters
        ----------
        logits : array-like of float, shape (n_examples, n_classes)
        y : array-like of int, shape (n_examples,)

        Returns
        -------
        self
            With ``nll_before_`` and ``nll_after_`` (the calibration split's mean NLL).
        """
        matrix = as_matrix(logits, name="logits")
        labels = as_labels(y, n_classes=matrix.shape[1], n_examples=matrix.shape[0])
        z = torch.from_numpy(matrix)
        t = torch.from_numpy(labels)
        params = self._initial(matrix.shape[1])
        optimizer = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=self.max_iter,
            tolerance_grad=self.tol,
            tolerance_change=self.tol,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(self._apply(z, params), t)
            loss.backward()
            return loss

        with torch.enable_grad():
            before = float(torch.nn.functional.cross_entropy(z, t))
            optimizer.step(closure)
        self._store([p.detach().clone() for p in params])
        self.n_classes_ = matrix.shape[1]
        self.nll_before_ = before
        with torch.no_grad():
            self.nll_after_ = float(torch.nn.functional.cross_entropy(self._transform(z), t))
        return self

    def transform(self, *, logits: ArrayLike) -> FloatArray:
        """Calibrated logits, shape (n_examples, n_classes), float64."""
        if not hasattr(self, "n_classes_"):
            raise ConfigurationError(MSG_NOT_FITTED.format(owner=type(self).__name__))
        matrix = as_matrix(logits, name="logits")
        if matrix.shape[1] != self.n_classes_:
            raise ConfigurationError(
                MSG_CLASSES.format(
                    owner=type(self).__name__, fitted=self.n_classes_, given=matrix.shape[1]
                )
            )
        with torch.no_grad():
            out: FloatArray = self._transform(torch.from_numpy(matrix)).numpy()
        return out

    def predict_proba(self, *, logits: ArrayLike) -> FloatArray:
        """Calibrated probabilities: the softmax of :meth:`transform`."""
        return softmax(self.transform(logits=logits))

    @abc.abstractmethod
    def _initial(self, n_classes: int) -> list[torch.Tensor]:
        """The parameters to optimise, as float64 leaf tensors that require gradients."""

    @abc.abstractmethod
    def _apply(self, logits: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """The map applied with ``params`` (differentiable)."""

    @abc.abstractmethod
    def _store(self, params: list[torch.Tensor]) -> None:
        """Keep the fitted parameters on attributes ending in ``_``."""

    @abc.abstractmethod
    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        """The map with the fitted parameters."""

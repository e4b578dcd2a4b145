"""The base classes of fairness mitigations and the report each one gives.

A mitigation targets one group-fairness criterion (``criterion``): demographic parity,
equalized odds or equal opportunity. After fitting it holds ``gap_``, the between-groups gap of
that criterion it achieved on the fitting data, and ``accuracy_``; :meth:`evaluate` measures the
same on other data and returns a :class:`MitigationReport`.

* :class:`ModelMitigation` trains (pre-processing and in-processing) a PyTorch classifier in
  place: ``fit(*, model, x, y, sensitive_features)``, then ``predict(*, x)``. Sensitive features
  are needed for training only.
* Post-processing (:class:`~trustlab.fairness.GroupThresholds`) adjusts a trained model's scores
  and needs the sensitive features at prediction time too.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from torch import nn

from trustlab.core.checks import as_input_tensor, check_batch_size, compute_logits
from trustlab.core.errors import ConfigurationError
from trustlab.core.typing import ArrayLike, IntArray
from trustlab.fairness._inputs import as_class_labels, check_choice
from trustlab.fairness.metrics import SensitiveFeatures, fairness_gap

__all__ = ["MITIGATION_CRITERIA", "FairnessMitigation", "MitigationReport", "ModelMitigation"]

#: The criteria a mitigation can target.
MITIGATION_CRITERIA = ("demographic_parity", "equalized_odds", "equal_opportunity")

MSG_NOT_FITTED = "{owner} is not fitted yet: call fit(...) first."
MSG_INT = "The {arg!r} parameter of {owner} must be an int >= {low}. Got {value!r} instead."
MSG_FLOAT = "The {arg!r} parameter of {owner} must be a finite float {rule}. Got {value!r} instead."

Self = TypeVar("Self", bound="FairnessMitigation")


def check_int(value: object, *, arg: str, owner: str, low: int = 1) -> int:
    """Return ``value`` if it is an int >= ``low``, else raise :class:`ConfigurationError`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigurationError(MSG_INT.format(arg=arg, owner=owner, low=low, value=value))
    if value < low:
        raise ConfigurationError(MSG_INT.format(arg=arg, owner=owner, low=low, value=value))
    return int(value)


def check_float(
    value: object, *, arg: str, owner: str, low: float = 0.0, strict: bool = False
) -> float:
    """Return ``value`` as a finite float ``> low`` (``strict``) or ``>= low``."""
    rule = f"> {low:g}" if strict else f">= {low:g}"
    ok = (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(float(value))
        and (float(value) > low if strict else float(value) >= low)
    )
    if not ok:
        raise ConfigurationError(MSG_FLOAT.format(arg=arg, owner=owner, rule=rule, value=value))
    return float(value)  # type: ignore[arg-type]


def check_criterion(value: object, *, owner: str) -> str:
    return check_choice(value, arg="criterion", owner=owner, choices=MITIGATION_CRITERIA)


@dataclass(frozen=True)
class MitigationReport:
    """What a mitigation achieved on some data.

    Attributes
    ----------
    criterion : str
        The criterion the mitigation targets.
    accuracy : float
        Accuracy of the hard predictions.
    gap : float
        Between-groups difference of the criterion (:func:`~trustlab.fairness.fairness_gap`).
    n_examples : int
        Examples evaluated.
    """

    criterion: str
    accuracy: float
    gap: float
    n_examples: int


def report_of(
    *, criterion: str, y_true: ArrayLike, y_pred: ArrayLike, sensitive_features: SensitiveFeatures
) -> MitigationReport:
    """Accuracy and gap of hard predictions."""
    truth = as_class_labels(y_true, name="y_true")
    gap = fairness_gap(
        criterion=criterion, y_true=truth, y_pred=y_pred, sensitive_features=sensitive_features
    )
    predictions = as_class_labels(y_pred, name="y_pred")
    return MitigationReport(
        criterion=criterion,
        accuracy=float(np.mean(predictions == truth)),
        gap=gap,
        n_examples=len(truth),
    )


class FairnessMitigation(abc.ABC):
    """Base class of mitigations: a targeted ``criterion`` and the achieved ``gap_``.

    Subclasses store their hyperparameters in ``__init__`` (keyword-only, checked at fit time)
    and set ``gap_`` and ``accuracy_`` when fitted.
    """

    criterion: str
    gap_: float
    accuracy_: float

    def _check_fitted(self) -> None:
        if not hasattr(self, "gap_"):
            raise ConfigurationError(MSG_NOT_FITTED.format(owner=type(self).__name__))


class ModelMitigation(FairnessMitigation):
    """Base class of mitigations that train a PyTorch classifier in place.

    The model maps inputs of shape (batch, ...) to two logits (batch, 2); class 1 is the
    positive (favourable) outcome. It is trained on its own device; ``model_`` is the trained
    model after :meth:`fit`.
    """

    model_: nn.Module

    @abc.abstractmethod
    def fit(
        self: Self,
        *,
        model: nn.Module,
        x: ArrayLike,
        y: ArrayLike,
        sensitive_features: SensitiveFeatures,
    ) -> Self:
        """Train ``model`` in place on ``(x, y)`` towards the criterion; return ``self``.

        Parameters
        ----------
        model : torch.nn.Module
            A two-class classifier returning logits of shape (batch, 2).
        x : array-like, shape (n_examples, ...)
            Training inputs.
        y : array-like of {0, 1}, shape (n_examples,)
            Training labels; 1 is the favourable outcome.
        sensitive_features : array-like or mapping of str to array-like
            The group of every training example (several attributes: intersectional groups).
        """

    def predict(self, *, x: ArrayLike, batch_size: int = 1024) -> IntArray:
        """Hard predictions (arg-max of the trained model's logits), shape (n_examples,)."""
        self._check_fitted()
        size = check_batch_size(batch_size, owner=f"{type(self).__name__}.predict")
        logits = compute_logits(model=self.model_, x=as_input_tensor(x), batch_size=size)
        predictions: IntArray = logits.argmax(dim=1).numpy().astype(np.int64)
        return predictions

    def evaluate(
        self, *, x: ArrayLike, y: ArrayLike, sensitive_features: SensitiveFeatures
    ) -> MitigationReport:
        """Accuracy and gap of the trained model's predictions on ``(x, y)``."""
        return report_of(
            criterion=self.criterion,
            y_true=y,
            y_pred=self.predict(x=x),
            sensitive_features=sensitive_features,
        )

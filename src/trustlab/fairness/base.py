"""The base classes of fairness mitigations, their registry and the report each one gives.

A mitigation targets one group-fairness criterion (``criterion``): demographic parity,
equalized odds or equal opportunity. After fitting it holds ``gap_``, the between-groups gap of
that criterion it achieved on the fitting data, and ``accuracy_``; :meth:`evaluate` measures the
same on other data and returns a :class:`MitigationReport`.

* :class:`ModelMitigation` trains (pre-processing and in-processing) a PyTorch classifier in
  place: ``fit(*, model, x, y, sensitive_features)``, then ``predict(*, x)``. Sensitive features
  are needed for training only.
* Post-processing (:class:`~trustlab.fairness.GroupThresholds`) adjusts a trained model's scores
  and needs the sensitive features at prediction time too.

Hyperparameters are declared in ``_parameter_constraints`` (the training ones once, on
:class:`ModelMitigation`) and checked when the mitigation is built. Every mitigation is
registered in :data:`MITIGATIONS` under a short name.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np
from torch import nn

from trustlab.core.checks import as_input_tensor, check_batch_size, compute_logits
from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Constraint, Integer, Options, Real, Seed
from trustlab.core.registry import Registry
from trustlab.core.typing import ArrayLike, IntArray
from trustlab.fairness._inputs import as_class_labels
from trustlab.fairness._training import TrainingData, training_data
from trustlab.fairness.metrics import SensitiveFeatures, fairness_gap

__all__ = [
    "MITIGATIONS",
    "MITIGATION_CRITERIA",
    "FairnessMitigation",
    "MitigationReport",
    "ModelMitigation",
]

#: The criteria a mitigation can target.
MITIGATION_CRITERIA = ("demographic_parity", "equalized_odds", "equal_opportunity")

MSG_NOT_FITTED = "{owner} is not fitted yet: call fit(...) first."

Self = TypeVar("Self", bound="ModelMitigation")


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

    Subclasses store their keyword-only hyperparameters in ``__init__`` and end it with
    :func:`~trustlab.core.params.validate_params`; they set ``gap_`` and ``accuracy_`` (and any
    other fitted state, ending in ``_``) in ``fit``, which returns ``self``.
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "criterion": Options(*MITIGATION_CRITERIA)
    }

    criterion: str
    gap_: float
    accuracy_: float

    def _check_fitted(self) -> None:
        if not hasattr(self, "gap_"):
            raise ConfigurationError(MSG_NOT_FITTED.format(owner=type(self).__name__))


#: The fairness mitigations by name, e.g. ``MITIGATIONS.build("reweighing", {"epochs": 5})``.
MITIGATIONS: Registry[type[FairnessMitigation]] = Registry("fairness mitigation")


class ModelMitigation(FairnessMitigation):
    """Base class of mitigations that train a PyTorch classifier in place.

    The model maps inputs of shape (batch, ...) to two logits (batch, 2); class 1 is the
    positive (favourable) outcome. It is trained on its own device by
    :func:`trustlab.core.training.train` with Adam; ``model_`` is the trained model after
    :meth:`fit`. The training hyperparameters ``epochs``, ``lr``, ``batch_size``,
    ``weight_decay`` and ``seed`` are declared here once. :meth:`fit` checks the data and
    measures the result; a subclass writes only ``_train``, the method itself.
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "epochs": Integer(low=1),
        "lr": Real(low=0, closed="neither"),
        "batch_size": Integer(low=1),
        "weight_decay": Real(low=0),
        "seed": Seed,
    }

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    seed: int
    model_: nn.Module

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

        Returns
        -------
        self
            Fitted: ``model_`` is ``model``, trained; ``gap_`` and ``accuracy_`` are measured
            on the training data.

        Raises
        ------
        DataError
            If the data are malformed (NaN, lengths, labels other than 0 and 1, a single
            group) or the model does not return two logits; the model is then left unchanged.
        """
        data = training_data(
            x=x, y=y, sensitive_features=sensitive_features, owner=type(self).__name__
        )
        self._train(model, data)
        self.model_ = model
        self.accuracy_, self.gap_ = self._measure(model, data)
        return self

    @abc.abstractmethod
    def _train(self, model: nn.Module, data: TrainingData) -> None:
        """Train ``model`` in place on the checked ``data``; set the method's own fitted
        attributes (``history_``, ...)."""

    def _measure(self, model: nn.Module, data: TrainingData) -> tuple[float, float]:
        """Accuracy and gap of ``model``'s predictions on its training data."""
        logits = compute_logits(model=model, x=data.x, batch_size=4096)
        report = report_of(
            criterion=self.criterion,
            y_true=data.y.numpy(),
            y_pred=logits.argmax(dim=1).numpy().astype(np.int64),
            sensitive_features=data.groups.codes,
        )
        return report.accuracy, report.gap

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

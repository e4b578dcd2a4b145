"""The base class of membership-inference attacks and the input checks they share.

A membership-inference attack gets a trained model and candidate examples and scores each
candidate: the higher the score, the more likely the example was in the model's training set.
Scores feed straight into :func:`trustlab.core.metrics.auc` and
:func:`trustlab.core.metrics.tpr_at_fpr` with ``y_true=member``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from torch import nn

from trustlab.core.checks import (
    MSG_BATCH_SIZE,
    MSG_LENGTH,
    MSG_LOGITS_NON_FINITE,
    MSG_LOGITS_SHAPE,
    MSG_X_EMPTY,
    MSG_X_NON_FINITE,
    MSG_X_SHAPE,
    MSG_X_TYPE,
    MSG_Y_DTYPE,
    MSG_Y_RANGE,
    MSG_Y_SHAPE,
    as_input_tensor,
    as_label_tensor,
    check_batch_size,
    check_labels_in_range,
    check_logits,
    check_same_length,
    compute_logits,
)
from trustlab.core.params import Constraint, Integer
from trustlab.core.registry import Registry
from trustlab.core.typing import ArrayLike, FloatArray

__all__ = [
    "MEMBERSHIP_ATTACKS",
    "MSG_BATCH_SIZE",
    "MSG_LENGTH",
    "MSG_LOGITS_NON_FINITE",
    "MSG_LOGITS_SHAPE",
    "MSG_X_EMPTY",
    "MSG_X_NON_FINITE",
    "MSG_X_SHAPE",
    "MSG_X_TYPE",
    "MSG_Y_DTYPE",
    "MSG_Y_RANGE",
    "MSG_Y_SHAPE",
    "MembershipInferenceAttack",
    "as_input_tensor",
    "as_label_tensor",
    "check_batch_size",
    "check_labels_in_range",
    "check_logits",
    "check_same_length",
    "compute_logits",
]


class MembershipInferenceAttack(abc.ABC):
    """Base class of membership-inference attacks: one score per example, higher = member.

    Subclasses store their keyword-only hyperparameters in ``__init__`` and end it with
    :func:`~trustlab.core.params.validate_params` (``batch_size`` is declared here once), and
    end fitted state in ``_``. :meth:`infer` checks the data and runs the model once, in eval
    mode and in batches; subclasses score its logits in :meth:`infer_from_logits`, which also
    lets one forward pass serve several attacks.
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"batch_size": Integer(low=1)}

    batch_size: int

    def infer(self, *, model: nn.Module, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Score every example; higher means more likely a member of ``model``'s training set.

        Parameters
        ----------
        model : torch.nn.Module
            The target model; maps inputs of shape (batch, ...) to logits of shape
            (batch, n_classes).
        x : torch.Tensor or ndarray, shape (n_examples, ...)
            Candidate inputs; must be finite.
        y : torch.Tensor or ndarray of int, shape (n_examples,)
            Their true class labels, in ``[0, n_classes)``.

        Returns
        -------
        ndarray of float64, shape (n_examples,)
            One finite membership score per example.

        Raises
        ------
        DataError
            If ``x`` holds a NaN or an infinity, ``x`` and ``y`` differ in length, ``y`` is not
            integer class indices within the model's outputs, or the model's output is not
            finite logits of shape (n_examples, n_classes).
        """
        inputs = as_input_tensor(x)
        labels = as_label_tensor(y)
        check_same_length(first="x", n_first=inputs.shape[0], second="y", n_second=len(labels))
        logits = compute_logits(model=model, x=inputs, batch_size=self.batch_size)
        return self.infer_from_logits(logits=logits, y=labels)

    @abc.abstractmethod
    def infer_from_logits(self, *, logits: ArrayLike, y: ArrayLike) -> FloatArray:
        """Score examples from the model's logits on them, shape (n_examples, n_classes).

        Returns one finite membership score per example, as :meth:`infer`.
        """


#: The membership-inference attacks by name, e.g. ``MEMBERSHIP_ATTACKS.build("loss_threshold")``.
MEMBERSHIP_ATTACKS: Registry[type[MembershipInferenceAttack]] = Registry(
    "membership-inference attack"
)

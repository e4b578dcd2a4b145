"""The base class of membership-inference attacks and the input checks they share.

A membership-inference attack gets a trained model and candidate examples and scores each
candidate: the higher the score, the more likely the example was in the model's training set.
Scores feed straight into :func:`trustlab.core.metrics.auc` and
:func:`trustlab.core.metrics.tpr_at_fpr` with ``y_true=member``.
"""

from __future__ import annotations

import abc

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
from trustlab.core.typing import ArrayLike, FloatArray

__all__ = [
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

    Subclasses store their hyperparameters in ``__init__`` (keyword-only, no work done there),
    validate them and the data when called, and end fitted state in ``_``.
    """

    @abc.abstractmethod
    def infer(self, *, model: nn.Module, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Score every example; higher means more likely a member of ``model``'s training set.

        Parameters
        ----------
        model : torch.nn.Module
            The target model, returning logits of shape (n_examples, n_classes).
        x : torch.Tensor or ndarray, shape (n_examples, ...)
            Candidate inputs.
        y : torch.Tensor or ndarray of int, shape (n_examples,)
            Their true class labels.

        Returns
        -------
        ndarray of float64, shape (n_examples,)
            One finite membership score per example.
        """

"""The loss-threshold membership-inference attack of Yeom et al. (2018)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_batch_size,
    check_labels_in_range,
    check_logits,
    check_same_length,
    compute_logits,
)
from trustlab.core.errors import ConfigurationError
from trustlab.core.metrics.roc import as_binary_labels, roc_curve
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.privacy.base import MembershipInferenceAttack

MSG_THRESHOLD = (
    "The 'threshold' parameter of LossThresholdAttack must be a number (a loss value) or None. "
    "Got {value!r} instead."
)
MSG_NOT_CALIBRATED = (
    "LossThresholdAttack has no threshold: call calibrate(model=..., x=..., y=..., member=...) "
    "first, or pass threshold=... (Yeom et al. use the mean training loss)."
)


class LossThresholdAttack(MembershipInferenceAttack):
    """Loss-threshold membership inference (Yeom et al., 2018).

    Models fit their training examples better than unseen ones, so a low loss is evidence of
    membership. The membership score of ``(x_i, y_i)`` is the negated cross-entropy loss of the
    model on it, ``-CE(model(x_i), y_i) = log softmax(model(x_i))[y_i]``: higher means more
    likely a member. The model runs in eval mode, without gradients, in batches.

    Threat model: grey-box. The attacker queries the model's outputs (logits, or anything that
    gives the loss) and knows each candidate's true label; it needs no shadow models, no
    training data and no gradients.

    Parameters
    ----------
    batch_size : int, default 512
        Examples per forward pass.
    threshold : float or None, default None
        A loss threshold to use in :meth:`predict_membership` without calibrating ("member iff
        loss <= threshold"); Yeom et al. use the model's mean training loss. A threshold set by
        :meth:`calibrate` (``threshold_``) takes precedence.

    Attributes
    ----------
    threshold_ : float
        Set by :meth:`calibrate`: the loss threshold with the best balanced accuracy on the
        calibration examples.
    balanced_accuracy_ : float
        Set by :meth:`calibrate`: that balanced accuracy.

    References
    ----------
    .. [1] S. Yeom, I. Giacomelli, M. Fredrikson and S. Jha, "Privacy Risk in Machine Learning:
       Analyzing the Connection to Overfitting", IEEE CSF 2018.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Linear(4, 3)
    >>> x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    >>> scores = LossThresholdAttack(batch_size=4).infer(model=model, x=x, y=y)
    >>> scores.shape
    (10,)
    >>> bool((scores <= 0).all())
    True
    """

    threshold_: float
    balanced_accuracy_: float

    def __init__(self, *, batch_size: int = 512, threshold: float | None = None) -> None:
        self.batch_size = batch_size
        self.threshold = threshold

    def infer(self, *, model: nn.Module, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Score every example by its negated cross-entropy loss under ``model``.

        Parameters
        ----------
        model : torch.nn.Module
            The target model; maps inputs of shape (batch, ...) to logits of shape
            (batch, n_classes).
        x : torch.Tensor or ndarray, shape (n_examples, ...)
            Candidate inputs; must be finite.
        y : torch.Tensor or ndarray of int, shape (n_examples,)
            True class labels, in ``[0, n_classes)``.

        Returns
        -------
        ndarray of float64, shape (n_examples,)
            ``-loss`` per example (<= 0); higher means more likely a member.

        Raises
        ------
        ConfigurationError
            If ``batch_size`` is not an int >= 1.
        DataError
            If ``x`` holds a NaN or an infinity, ``x`` and ``y`` differ in length, ``y`` is not
            integer class indices within the model's outputs, or the model's output is not
            finite logits of shape (n_examples, n_classes).
        """
        batch_size = check_batch_size(self.batch_size, owner=type(self).__name__)
        inputs = as_input_tensor(x)
        labels = as_label_tensor(y)
        check_same_length(first="x", n_first=inputs.shape[0], second="y", n_second=len(labels))
        logits = compute_logits(model=model, x=inputs, batch_size=batch_size)
        return self.infer_from_logits(logits=logits, y=labels)

    def infer_from_logits(self, *, logits: ArrayLike, y: ArrayLike) -> FloatArray:
        """Score examples from logits already computed, so one forward pass serves many attacks.

        Parameters
        ----------
        logits : torch.Tensor or ndarray, shape (n_examples, n_classes)
            The model's outputs on the candidates.
        y : torch.Tensor or ndarray of int, shape (n_examples,)
            True class labels.

        Returns
        -------
        ndarray of float64, shape (n_examples,)
            ``-loss`` per example, as :meth:`infer`.
        """
        labels = as_label_tensor(y)
        if isinstance(logits, torch.Tensor):
            tensor = logits.detach().cpu()
        else:
            tensor = torch.as_tensor(np.asarray(logits))
        # Losses in float64, so that near-zero losses of well-fit members stay distinct.
        tensor = check_logits(tensor.to(torch.float64), n_examples=len(labels))
        check_labels_in_range(labels, n_classes=tensor.shape[1])
        losses = F.cross_entropy(tensor, labels, reduction="none")
        scores: FloatArray = (-losses).numpy().astype(np.float64)
        return scores

    def calibrate(
        self, *, model: nn.Module, x: ArrayLike, y: ArrayLike, member: ArrayLike
    ) -> LossThresholdAttack:
        """Choose the loss threshold with the best balanced accuracy on labelled examples.

        The candidate rules are "member iff loss <= t" for every distinct loss ``t`` among the
        examples (and "nobody is a member"); the chosen one maximises balanced accuracy
        ``(TPR + TNR) / 2``, ties going to the smallest threshold (fewest members predicted).
        The result is stored in ``threshold_`` and ``balanced_accuracy_``.

        Parameters
        ----------
        model : torch.nn.Module
            The target model.
        x : torch.Tensor or ndarray, shape (n_examples, ...)
            Calibration inputs.
        y : torch.Tensor or ndarray of int, shape (n_examples,)
            Their true class labels.
        member : array-like of {0, 1} or bool, shape (n_examples,)
            1 (``True``) for training-set members; both classes must be present.

        Returns
        -------
        LossThresholdAttack
            ``self``, calibrated.
        """
        labels = as_binary_labels(member, name="member")
        scores = self.infer(model=model, x=x, y=y)
        check_same_length(first="x", n_first=len(scores), second="member", n_second=len(labels))
        curve = roc_curve(y_true=labels, scores=scores)
        youden = curve.tpr - curve.fpr
        best = int(np.argmax(youden))
        # Score threshold s means "member iff -loss >= s", i.e. "member iff loss <= -s".
        self.threshold_ = float(-curve.thresholds[best])
        self.balanced_accuracy_ = float((1.0 + youden[best]) / 2.0)
        return self

    def predict_membership(
        self, *, model: nn.Module, x: ArrayLike, y: ArrayLike
    ) -> npt.NDArray[np.bool_]:
        """Predict membership: ``True`` iff the example's loss is <= the threshold.

        Uses ``threshold_`` from :meth:`calibrate` if set, else the ``threshold`` parameter.

        Parameters
        ----------
        model : torch.nn.Module
            The target model.
        x : torch.Tensor or ndarray, shape (n_examples, ...)
            Candidate inputs.
        y : torch.Tensor or ndarray of int, shape (n_examples,)
            Their true class labels.

        Returns
        -------
        ndarray of bool, shape (n_examples,)

        Raises
        ------
        ConfigurationError
            If the attack is neither calibrated nor given a ``threshold``, or ``threshold`` is
            not a number.
        """
        threshold = self._threshold()
        losses = -self.infer(model=model, x=x, y=y)
        prediction: npt.NDArray[np.bool_] = losses <= threshold
        return prediction

    def _threshold(self) -> float:
        if hasattr(self, "threshold_"):
            return self.threshold_
        if self.threshold is None:
            raise ConfigurationError(MSG_NOT_CALIBRATED)
        value = self.threshold
        is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
        if not is_number or math.isnan(float(value)):
            raise ConfigurationError(MSG_THRESHOLD.format(value=value))
        return float(value)

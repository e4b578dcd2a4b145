"""The loss-threshold membership-inference attack of Yeom et al. (2018)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_label_tensor,
    check_labels_in_range,
    check_logits,
    check_same_length,
)
from trustlab.core.errors import ConfigurationError
from trustlab.core.metrics.roc import as_binary_labels, roc_curve
from trustlab.core.params import Constraint, Optional, Real, validate_params
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.privacy.base import MEMBERSHIP_ATTACKS, MembershipInferenceAttack

__all__ = ["LossThresholdAttack"]

MSG_NOT_CALIBRATED = (
    "LossThresholdAttack has no threshold: call calibrate(model=..., x=..., y=..., member=...) "
    "first, or pass threshold=... (Yeom et al. use the mean training loss)."
)


@MEMBERSHIP_ATTACKS.register("loss_threshold")
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
        Examples per forward pass, >= 1.
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

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"threshold": Optional(Real())}

    threshold_: float
    balanced_accuracy_: float

    def __init__(self, *, batch_size: int = 512, threshold: float | None = None) -> None:
        self.batch_size = batch_size
        self.threshold = threshold
        validate_params(self)

    def infer_from_logits(self, *, logits: ArrayLike, y: ArrayLike) -> FloatArray:
        """Score examples by their negated cross-entropy loss, from logits already computed.

        :meth:`infer` runs the model and calls this; calling it directly lets one forward pass
        serve many attacks.

        Parameters
        ----------
        logits : torch.Tensor or ndarray, shape (n_examples, n_classes)
            The model's outputs on the candidates.
        y : torch.Tensor or ndarray of int, shape (n_examples,)
            True class labels.

        Returns
        -------
        ndarray of float64, shape (n_examples,)
            ``-loss`` per example (<= 0); higher means more likely a member.
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
        model, x, y
            The target model and the calibration examples, as in :meth:`infer`.
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
        model, x, y
            The target model and the candidates, as in :meth:`infer`.

        Returns
        -------
        ndarray of bool, shape (n_examples,)

        Raises
        ------
        ConfigurationError
            If the attack is neither calibrated nor given a ``threshold``.
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
        return self.threshold

"""Reweighing (Kamiran & Calders, 2012): pre-processing towards demographic parity."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import check_same_length
from trustlab.core.params import validate_params
from trustlab.core.training import Step
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.fairness._inputs import as_class_labels, as_groups
from trustlab.fairness._training import TrainingData, logits_and_margin, train_mitigation
from trustlab.fairness.base import MITIGATIONS, ModelMitigation
from trustlab.fairness.metrics import SensitiveFeatures

__all__ = ["Reweighing", "reweighing_weights"]


def reweighing_weights(*, y: ArrayLike, sensitive_features: SensitiveFeatures) -> FloatArray:
    """Kamiran-Calders weights ``w(g, y) = P(g) P(y) / P(g, y)``, one per example.

    Under these weights the label is independent of the group: every group has the overall
    base rate. The weights average to 1.

    Parameters
    ----------
    y : array-like of int, shape (n_examples,)
        Labels.
    sensitive_features : array-like or mapping of str to array-like
        The group of every example.

    Returns
    -------
    ndarray of float64, shape (n_examples,)

    Examples
    --------
    >>> reweighing_weights(y=[1, 1, 0, 1, 0, 0], sensitive_features=[0, 0, 0, 1, 1, 1])
    array([0.75, 0.75, 1.5 , 1.5 , 0.75, 0.75])
    """
    labels = as_class_labels(y, name="y")
    groups = as_groups(sensitive_features, n_examples=len(labels), other="y")
    check_same_length(
        first="y", n_first=len(labels), second="sensitive_features", n_second=len(groups)
    )
    _, label_codes = np.unique(labels, return_inverse=True)
    label_codes = label_codes.reshape(-1)
    n = len(labels)
    n_labels = int(label_codes.max()) + 1
    joint = np.bincount(groups.codes * n_labels + label_codes, minlength=groups.n_groups * n_labels)
    p_group = np.bincount(groups.codes, minlength=groups.n_groups) / n
    p_label = np.bincount(label_codes, minlength=n_labels) / n
    p_joint = joint[groups.codes * n_labels + label_codes] / n
    weights: FloatArray = p_group[groups.codes] * p_label[label_codes] / p_joint
    return weights


@MITIGATIONS.register("reweighing")
class Reweighing(ModelMitigation):
    """Reweighing: train on examples weighted so the label is independent of the group.

    Pre-processing. Each training example of group ``g`` and label ``y`` gets the weight
    ``w(g, y) = P(g) P(y) / P(g, y)`` (:func:`reweighing_weights`), which gives every group the
    overall base rate; the model is then trained with the weighted cross-entropy
    ``sum_i w_i CE_i / sum_i w_i`` (per batch, Adam). Kamiran & Calders pass the weights to a
    learner that accepts them; here the PyTorch model is trained with them directly.

    Criterion: demographic parity. Reweighing does not bound the gap: it removes the dependence
    of the label on the group from the training distribution, which usually shrinks, but need
    not close, the gap of the trained model (proxies of the group among the features remain).

    Threat model / setting: the sensitive attribute is needed at training time only.

    Parameters
    ----------
    epochs : int, default 20
        Passes over the training data.
    lr : float, default 1e-3
        Adam learning rate.
    batch_size : int, default 256
        Examples per step.
    weight_decay : float, default 0.0
        L2 penalty.
    seed : int, default 0
        Seed of shuffling and dropout; the caller's random state is restored.

    Attributes
    ----------
    criterion : str
        ``"demographic_parity"``.
    weights_ : ndarray of float64, shape (n_examples,)
        The training weights.
    model_ : torch.nn.Module
        The trained model (the one passed to :meth:`fit`).
    history_ : list of float
        Mean weighted loss of each epoch.
    gap_, accuracy_ : float
        Demographic-parity gap and accuracy of the trained model on the training data.

    References
    ----------
    .. [1] F. Kamiran and T. Calders, "Data preprocessing techniques for classification without
       discrimination", Knowledge and Information Systems 33(1), 2012.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(200, 3)
    >>> group = (x[:, 0] > 0).long()
    >>> y = ((x[:, 1] + group) > 0.5).long()
    >>> model = torch.nn.Linear(3, 2)
    >>> mitigation = Reweighing(epochs=2).fit(model=model, x=x, y=y, sensitive_features=group)
    >>> mitigation.criterion, 0.0 <= mitigation.gap_ <= 1.0
    ('demographic_parity', True)
    """

    def __init__(
        self,
        *,
        epochs: int = 20,
        lr: float = 1e-3,
        batch_size: int = 256,
        weight_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.criterion = "demographic_parity"
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        validate_params(self)

    def _train(self, model: nn.Module, data: TrainingData) -> None:
        owner = type(self).__name__
        weights = reweighing_weights(y=data.y.numpy(), sensitive_features=data.group.numpy())

        def loss(step: Step) -> torch.Tensor:
            logits, _ = logits_and_margin(step, owner=owner)
            w = step.batch["weight"]
            losses = F.cross_entropy(logits, step.batch["y"], reduction="none")
            return (w * losses).sum() / w.sum().clamp_min(1e-12)

        history = train_mitigation(
            self, model, data, loss=loss, extras={"weight": torch.from_numpy(weights)}
        )
        self.history_ = history.losses
        self.weights_ = weights

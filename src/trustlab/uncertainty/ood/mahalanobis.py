"""Mahalanobis distance to class-conditional Gaussians with a tied covariance (Lee et al., 2018)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_labels_in_range,
    check_same_length,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import (
    Constraint,
    NonEmptyStr,
    Optional,
    Real,
    store_params,
    validate_params,
)
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.uncertainty.ood.base import (
    MSG_NEEDS_LABELS,
    OOD_DETECTORS,
    OODDetector,
    as_features,
    eval_mode,
    forward_with_features,
    to_array,
)

__all__ = ["Mahalanobis"]

MSG_EMPTY_CLASS = (
    "Mahalanobis.fit found no example of class {k} (labels run from 0 to {top}); every class "
    "needs in-distribution examples to estimate its mean."
)
MSG_NEEDS_MODEL = (
    "Mahalanobis with eps > 0 perturbs the inputs, so it needs the model: call "
    "score(model=..., x=...), or set eps=0 to score precomputed features."
)


@OOD_DETECTORS.register("mahalanobis")
class Mahalanobis(OODDetector):
    """Minimum Mahalanobis distance of the features to the class means.

    ``fit`` estimates one mean ``mu_k`` per class and one covariance shared by all classes
    (the maximum-likelihood estimate ``Sigma = (1/N) sum_k sum_{y_i = k} (f_i - mu_k)(f_i -
    mu_k)^T``, as ``sklearn.covariance.EmpiricalCovariance`` in the authors' code) from
    in-distribution features; the outlier score is ``min_k (f(x) - mu_k)^T Sigma^+ (f(x) -
    mu_k)``, the negated confidence score ``M(x)`` of Lee et al. (2018), with ``Sigma^+`` the
    pseudo-inverse.

    With ``eps > 0`` each input first takes the paper's step ``x' = x - eps * sign(grad_x
    d(x))``, ``d`` the distance to the closest class mean (needs the model).

    Differences from the paper: one feature layer (the penultimate by default), not the
    paper's ensemble of layers weighted by a logistic regression fitted on OOD validation
    data; ``eps`` defaults to 0 (the paper tunes it on such data). pytorch-ood's
    ``Mahalanobis`` divides the covariance by nothing (a sum of outer products plus ``1e-6 I``)
    and halves the distance: its scores are this one's divided by ``2 N``.

    Parameters
    ----------
    eps : float, default 0.0
    layer : str, optional
        The submodule whose input is the feature vector; default the last ``nn.Linear``.
    batch_size : int, default 256

    Attributes
    ----------
    means_ : torch.Tensor, shape (n_classes, n_features)
    precision_ : torch.Tensor, shape (n_features, n_features)
    n_fitted_ : int

    References
    ----------
    .. [1] K. Lee, K. Lee, H. Lee and J. Shin, "A Simple Unified Framework for Detecting
       Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> f = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
    >>> y = np.repeat([0, 1], 50)
    >>> m = Mahalanobis().fit_outputs(features=f, y=y)
    >>> s = m.score_outputs(logits=np.zeros((2, 2)), features=[[0.0, 0.0], [20.0, -20.0]])
    >>> bool(s[1] > s[0])
    True
    """

    name = "mahalanobis"
    needs_fit = True
    needs_features = True
    needs_labels = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "eps": Real(low=0),
        "layer": Optional(NonEmptyStr()),
    }

    def __init__(
        self, *, eps: float = 0.0, layer: str | None = None, batch_size: int = 256
    ) -> None:
        store_params(self, eps=eps, layer=layer, batch_size=batch_size)
        validate_params(self)

    eps: float

    def fit_outputs(
        self,
        *,
        logits: ArrayLike | None = None,
        features: ArrayLike | None = None,
        y: ArrayLike | None = None,
    ) -> Mahalanobis:
        feats = as_features(features, owner="Mahalanobis")
        if y is None:
            raise ConfigurationError(MSG_NEEDS_LABELS.format(owner="Mahalanobis"))
        labels = as_label_tensor(y)
        check_same_length(first="y", n_first=len(labels), second="features", n_second=len(feats))
        check_labels_in_range(labels, n_classes=max(1, int(labels.max()) + 1))
        top = int(labels.max())
        means = []
        centred = torch.empty_like(feats)
        for k in range(top + 1):
            rows = labels == k
            if not bool(rows.any()):
                raise DataError(MSG_EMPTY_CLASS.format(k=k, top=top))
            means.append(feats[rows].mean(dim=0))
            centred[rows] = feats[rows] - means[-1]
        covariance = centred.T @ centred / feats.shape[0]
        self.means_ = torch.stack(means)
        self.precision_ = torch.linalg.pinv(covariance, hermitian=True)
        self.n_fitted_ = int(feats.shape[0])
        return self

    def _distances(self, feats: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance to every class mean, shape (n, n_classes)."""
        means = self.means_.to(feats)
        precision = self.precision_.to(feats)
        diff = feats[:, None, :] - means[None, :, :]
        return torch.einsum("nkd,de,nke->nk", diff, precision, diff)

    def score_outputs(
        self, *, logits: ArrayLike | None = None, features: ArrayLike | None = None
    ) -> FloatArray:
        self._check_fitted()
        if self.eps > 0:
            raise ConfigurationError(MSG_NEEDS_MODEL)
        feats = as_features(features, owner="Mahalanobis")
        return to_array(self._distances(feats).min(dim=1).values)

    def score(self, *, model: nn.Module, x: ArrayLike) -> FloatArray:
        self._check_fitted()
        if self.eps == 0:
            return super().score(model=model, x=x)
        inputs = as_input_tensor(x)
        device, dtype = model_device_and_dtype(model)
        scores = []
        with eval_mode(model):
            for start in range(0, inputs.shape[0], self.batch_size):
                batch = inputs[start : start + self.batch_size].to(device=device, dtype=dtype)
                with torch.enable_grad():
                    leaf = batch.clone().requires_grad_(True)
                    _, feats = forward_with_features(model, leaf, layer=self.layer)
                    closest = self._distances(feats.double()).min(dim=1).values
                    (grad,) = torch.autograd.grad(closest.sum(), leaf)
                moved = (batch - self.eps * torch.sign(grad)).detach()
                with torch.no_grad():
                    _, feats = forward_with_features(model, moved, layer=self.layer)
                    scores.append(self._distances(feats.double()).min(dim=1).values.cpu())
        return np.asarray(to_array(torch.cat(scores)), dtype=np.float64)

"""k-th nearest-neighbour distance of normalised features (Sun et al., 2022)."""

from __future__ import annotations

from typing import ClassVar

import torch

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import (
    Constraint,
    Integer,
    NonEmptyStr,
    Optional,
    store_params,
    validate_params,
)
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.uncertainty.ood.base import OOD_DETECTORS, OODDetector, as_features, to_array

__all__ = ["KNN"]

MSG_TOO_FEW = (
    "KNN has k={k} but was fitted on {n} in-distribution examples; fit on at least k examples "
    "or lower k."
)
#: Pairwise distances are computed for this many test rows at a time.
_CHUNK = 1024


@OOD_DETECTORS.register("knn")
class KNN(OODDetector):
    """Distance from the L2-normalised feature of an input to its ``k``-th nearest
    in-distribution neighbour; larger means more likely OOD.

    Non-parametric: no Gaussian assumption on the features, unlike :class:`Mahalanobis`.
    ``fit`` stores the normalised features of in-distribution inputs (labels are not used).
    Distances are exact (the paper uses Faiss's exact index as well), computed in chunks.

    Parameters
    ----------
    k : int, default 50
        The neighbour rank; the paper's choice for CIFAR-10 (1000 for ImageNet).
    layer : str, optional
        The submodule whose input is the feature vector; default the last ``nn.Linear``
        (the penultimate layer, as in the paper).
    batch_size : int, default 256

    Attributes
    ----------
    bank_ : torch.Tensor, shape (n_fitted, n_features)
        The normalised in-distribution features.
    n_fitted_ : int

    References
    ----------
    .. [1] Y. Sun, Y. Ming, X. Zhu and Y. Li, "Out-of-Distribution Detection with Deep Nearest
       Neighbors", ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> knn = KNN(k=1).fit_outputs(features=[[1.0, 0.0], [0.9, 0.1]])
    >>> s = knn.score_outputs(logits=np.zeros((2, 2)), features=[[1.0, 0.05], [0.0, 1.0]])
    >>> bool(s[1] > s[0])
    True
    """

    name = "knn"
    needs_fit = True
    needs_features = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k": Integer(low=1),
        "layer": Optional(NonEmptyStr()),
    }

    def __init__(self, *, k: int = 50, layer: str | None = None, batch_size: int = 256) -> None:
        store_params(self, k=k, layer=layer, batch_size=batch_size)
        validate_params(self)

    k: int

    def fit_outputs(
        self,
        *,
        logits: ArrayLike | None = None,
        features: ArrayLike | None = None,
        y: ArrayLike | None = None,
    ) -> KNN:
        feats = as_features(features, owner="KNN")
        if feats.shape[0] < self.k:
            raise ConfigurationError(MSG_TOO_FEW.format(k=self.k, n=feats.shape[0]))
        self.bank_ = torch.nn.functional.normalize(feats, dim=1)
        self.n_fitted_ = int(feats.shape[0])
        return self

    def score_outputs(
        self, *, logits: ArrayLike | None = None, features: ArrayLike | None = None
    ) -> FloatArray:
        self._check_fitted()
        feats = torch.nn.functional.normalize(as_features(features, owner="KNN"), dim=1)
        out = []
        for start in range(0, feats.shape[0], _CHUNK):
            distances = torch.cdist(feats[start : start + _CHUNK], self.bank_)
            out.append(torch.kthvalue(distances, self.k, dim=1).values)
        return to_array(torch.cat(out))

"""Individual fairness as consistency: similar people get similar predictions (Zemel et al.)."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from trustlab.core.checks import as_input_tensor
from trustlab.core.errors import DataError
from trustlab.core.params import Integer, check_param
from trustlab.core.typing import ArrayLike

__all__ = ["consistency_score"]

MSG_LENGTH = "x has {n_x} rows but y_pred has {n_y} values; pass one prediction per row."
MSG_TOO_FEW = "consistency_score needs more rows than n_neighbors ({k}); got {n} rows."


def consistency_score(*, x: ArrayLike, y_pred: ArrayLike, n_neighbors: int = 5) -> float:
    """Agreement of each prediction with those of its nearest neighbours, in [0, 1].

    ``1 - mean_i |y_pred_i - mean_{j in kNN(i)} y_pred_j|`` (Zemel et al., 2013), with the
    ``n_neighbors`` nearest other rows of ``x`` in Euclidean distance (the row itself is left
    out; AIF360's ``consistency`` counts it as one of the ``n_neighbors``). 1 means every
    example is predicted like its neighbours. Scale ``x`` so that distances mean similarity,
    and leave out the sensitive attributes to ask whether people who differ only in them are
    treated alike.

    Parameters
    ----------
    x : array-like, shape (n_examples, n_features)
        The features that define similarity.
    y_pred : array-like of {0, 1} or of float in [0, 1], shape (n_examples,)
        Predictions (or scores).
    n_neighbors : int, default 5
        Neighbours compared.

    Returns
    -------
    float

    References
    ----------
    .. [1] R. Zemel, Y. Wu, K. Swersky, T. Pitassi and C. Dwork, "Learning Fair
       Representations", ICML 2013.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(20, dtype=float).reshape(-1, 1)
    >>> consistency_score(x=x, y_pred=(x[:, 0] >= 10).astype(int), n_neighbors=2)
    0.95
    """
    k = check_param(n_neighbors, Integer(low=1), name="n_neighbors", owner="consistency_score")
    tensor = as_input_tensor(x)
    features = tensor.reshape(tensor.shape[0], -1).numpy()
    predictions = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if features.shape[0] != len(predictions):
        raise DataError(MSG_LENGTH.format(n_x=features.shape[0], n_y=len(predictions)))
    if len(predictions) <= k:
        raise DataError(MSG_TOO_FEW.format(k=k, n=len(predictions)))
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(features)
    _, index = neighbours.kneighbors(features)
    others = index[:, 1:]
    return float(1.0 - np.mean(np.abs(predictions - predictions[others].mean(axis=1))))

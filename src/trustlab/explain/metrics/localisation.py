"""Localisation against a ground-truth mask: pointing game, relevance mass and rank, IoU.

Each metric is a function of arrays (maps and masks, never a model) and returns one value per
example, so a caller can average, split or bootstrap them. The maps are pooled over channels
by summing (:func:`~trustlab.explain.attribution.as_maps`; Arras et al. 2022 pool relevance
this way) unless ``pooling`` says otherwise.

References
----------
Zhang et al., 2018, "Top-down neural attention by excitation backprop" (pointing game).
Arras, Osman and Samek, 2022, "CLEVR-XAI: A benchmark dataset for the ground truth evaluation
of neural network explanations" (relevance mass and relevance rank accuracy).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from trustlab.core.params import Integer, check_param
from trustlab.core.typing import ArrayLike
from trustlab.explain.metrics._inputs import maps_array, masks_array

__all__ = [
    "attribution_iou",
    "pointing_game",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
]


def _inputs(
    attributions: ArrayLike, masks: ArrayLike, pooling: str
) -> tuple[np.ndarray, np.ndarray]:
    maps = maps_array(attributions, pooling=pooling)
    return maps.reshape(len(maps), -1), masks_array(masks, shape=maps.shape).reshape(len(maps), -1)


def _top_k(flat: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Boolean rows marking each row's ``sizes[i]`` largest values (ties: earlier pixel first)."""
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None, :], axis=1)
    top: np.ndarray = ranks < sizes[:, None]
    return top


def pointing_game(
    *, attributions: ArrayLike, masks: ArrayLike, tolerance: int = 0, pooling: str = "sum"
) -> np.ndarray:
    """Whether each map's maximum falls on the object (Zhang et al., 2018).

    A hit when every pixel that attains the map's maximum lies within ``tolerance`` pixels
    (Chebyshev distance) of the mask; a constant map therefore misses. Zhang et al. use a
    15-pixel tolerance on 224-pixel images; the default here is 0, for small images.

    Parameters
    ----------
    attributions : array-like, shape (n, C, H, W) or (n, H, W)
    masks : array-like of bool, shape (n, H, W)
        The ground truth; each mask non-empty.
    tolerance : int, default=0
    pooling : str, default="sum"
        How channels are pooled (:func:`~trustlab.explain.attribution.as_maps`).

    Returns
    -------
    np.ndarray of float64, shape (n,)
        1.0 for a hit, 0.0 for a miss.

    Examples
    --------
    >>> maps = np.zeros((1, 4, 4)); maps[0, 1, 1] = 1.0
    >>> masks = np.zeros((1, 4, 4), bool); masks[0, :2, :2] = True
    >>> pointing_game(attributions=maps, masks=masks)
    array([1.])
    """
    tolerance = check_param(tolerance, Integer(low=0), name="tolerance", owner="pointing_game")
    maps = maps_array(attributions, pooling=pooling)
    truth = masks_array(masks, shape=maps.shape)
    if tolerance:
        size = 2 * tolerance + 1
        truth = np.stack([ndimage.binary_dilation(m, np.ones((size, size), bool)) for m in truth])
    flat, flat_truth = maps.reshape(len(maps), -1), truth.reshape(len(maps), -1)
    at_max = flat == flat.max(axis=1, keepdims=True)
    hits = ~(at_max & ~flat_truth).any(axis=1)
    return hits.astype(np.float64)


def relevance_mass_accuracy(
    *, attributions: ArrayLike, masks: ArrayLike, pooling: str = "sum"
) -> np.ndarray:
    """The share of positive relevance that falls inside the mask (Arras et al., 2022).

    ``R_within / R_total`` over the positive values of each pooled map; 0 for a map with no
    positive value. Random maps score about the mask's share of the image.

    Returns
    -------
    np.ndarray of float64, shape (n,), values in [0, 1]

    Examples
    --------
    >>> maps = np.ones((1, 2, 2)); masks = np.array([[[True, False], [False, False]]])
    >>> relevance_mass_accuracy(attributions=maps, masks=masks)
    array([0.25])
    """
    flat, truth = _inputs(attributions, masks, pooling)
    positive = np.clip(flat, 0.0, None)
    total = positive.sum(axis=1)
    within = (positive * truth).sum(axis=1)
    return np.divide(within, total, out=np.zeros_like(total), where=total > 0)


def relevance_rank_accuracy(
    *, attributions: ArrayLike, masks: ArrayLike, pooling: str = "sum"
) -> np.ndarray:
    """The share of the K most relevant pixels that lie in the mask, K = the mask's size
    (Arras et al., 2022). Ties are broken by pixel order.

    Returns
    -------
    np.ndarray of float64, shape (n,), values in [0, 1]

    Examples
    --------
    >>> maps = np.arange(4.0).reshape(1, 2, 2); masks = np.array([[[False, False], [True, True]]])
    >>> relevance_rank_accuracy(attributions=maps, masks=masks)
    array([1.])
    """
    flat, truth = _inputs(attributions, masks, pooling)
    sizes = truth.sum(axis=1)
    top = _top_k(flat, sizes)
    result: np.ndarray = (top & truth).sum(axis=1) / sizes
    return result.astype(np.float64)


def attribution_iou(
    *, attributions: ArrayLike, masks: ArrayLike, pooling: str = "sum"
) -> np.ndarray:
    """Intersection over union of the K most relevant pixels with the mask (K = its size).

    Binarising at the mask's size (rather than at a fixed threshold) makes maps of any scale
    comparable; with ``r`` the rank accuracy, IoU = r / (2 - r).

    Returns
    -------
    np.ndarray of float64, shape (n,), values in [0, 1]

    Examples
    --------
    >>> maps = np.arange(4.0).reshape(1, 2, 2); masks = np.array([[[False, True], [False, True]]])
    >>> attribution_iou(attributions=maps, masks=masks)
    array([0.33333333])
    """
    flat, truth = _inputs(attributions, masks, pooling)
    top = _top_k(flat, truth.sum(axis=1))
    inter = (top & truth).sum(axis=1)
    union = (top | truth).sum(axis=1)
    result: np.ndarray = inter / union
    return result.astype(np.float64)

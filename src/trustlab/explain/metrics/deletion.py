"""Deletion and insertion curves (Petsiuk et al., 2018, "RISE"), batched over examples.

**Deletion** removes pixels from the input, most relevant first, and follows the model's
probability of the explained class: a faithful map makes it fall fast (low area under the
curve). **Insertion** starts from a blurred copy and puts the original pixels back, most
relevant first: a faithful map makes the probability rise fast (high area). A pixel is every
channel at one position, ranked by the map pooled over channels (sum).

The paper's defaults: deleted pixels become 0; insertion starts from the input blurred by a
Gaussian of 11x11 pixels and standard deviation 5 (zero-padded); the area is the trapezoid rule
over the fraction of pixels changed, in [0, 1]. The curve has ``n_steps + 1`` points; after
step ``k``, ``round(k * P / n_steps)`` of the ``P`` pixels are changed (the paper changes a
fixed number per step, the same when it divides ``P``).

All perturbed copies of a batch are built at once from each pixel's rank and fed to the model
``batch_size`` rows at a time; the loop is over chunks, not over examples or steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_batch_size,
    check_same_length,
    model_device_and_dtype,
    run_model,
)
from trustlab.core.errors import DataError
from trustlab.core.params import Integer, Options, Real, check_param
from trustlab.core.training import model_mode
from trustlab.core.typing import ArrayLike
from trustlab.explain.attribution import as_maps

__all__ = [
    "PerturbationCurves",
    "blur",
    "deletion_curve",
    "insertion_curve",
    "perturbation_ranks",
]

MSG_SHAPE = (
    "attributions must give one map per input: (n, H, W) or (n, C, H, W) with the inputs' "
    "height and width {want}; got shape {got}."
)
MSG_NOT_IMAGES = "x must be images of shape (n, C, H, W); got shape {shape}."

#: Petsiuk et al.'s blur for the insertion curve: kernel side and standard deviation.
BLUR_KERNEL = 11
BLUR_SIGMA = 5.0


@dataclass(frozen=True)
class PerturbationCurves:
    """Probabilities of the explained class along a deletion or insertion curve.

    Attributes
    ----------
    fractions : np.ndarray, shape (n_steps + 1,)
        Fraction of the pixels changed at each point, from 0 to 1.
    scores : np.ndarray, shape (n, n_steps + 1)
        Softmax probability of each example's target class at each point.
    auc : np.ndarray, shape (n,)
        Area under each curve (trapezoid rule over ``fractions``).
    kind : str
        ``"deletion"`` or ``"insertion"``.
    """

    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    kind: str


def blur(x: torch.Tensor, *, kernel: int = BLUR_KERNEL, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Gaussian blur of images ``(n, C, H, W)``, each channel alone, zero-padded (as RISE).

    Examples
    --------
    >>> blur(torch.ones(1, 1, 5, 5)).shape
    torch.Size([1, 1, 5, 5])
    """
    offsets = torch.arange(kernel, dtype=x.dtype, device=x.device) - kernel // 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    weights = weights / weights.sum()
    square = (weights[:, None] * weights[None, :]).expand(x.shape[1], 1, kernel, kernel)
    return F.conv2d(x, square.contiguous(), padding=kernel // 2, groups=x.shape[1])


def perturbation_ranks(maps: torch.Tensor) -> torch.Tensor:
    """Each pixel's place in its map's order, most relevant first (ties: earlier pixel first).

    Parameters
    ----------
    maps : torch.Tensor, shape (n, H, W)

    Returns
    -------
    torch.Tensor of int64, shape (n, H * W)
    """
    flat = maps.reshape(maps.shape[0], -1)
    order = torch.argsort(-flat, dim=1, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(flat.shape[1], device=flat.device).expand_as(order)
    ranks.scatter_(1, order, positions)
    return ranks


def _counts(n_pixels: int, n_steps: int) -> torch.Tensor:
    steps = np.arange(n_steps + 1, dtype=np.float64)
    return torch.from_numpy(np.rint(steps * n_pixels / n_steps).astype(np.int64))


def _curves(
    *,
    kind: str,
    model: nn.Module,
    x: ArrayLike,
    attributions: ArrayLike,
    target: ArrayLike | None,
    n_steps: int,
    baseline: str | float,
    batch_size: int,
) -> PerturbationCurves:
    owner = f"{kind}_curve"
    n_steps = check_param(n_steps, Integer(low=1), name="n_steps", owner=owner)
    batch_size = check_batch_size(batch_size, owner=owner)
    inputs = as_input_tensor(x)
    if inputs.dim() != 4:
        raise DataError(MSG_NOT_IMAGES.format(shape=tuple(inputs.shape)))
    device, dtype = model_device_and_dtype(model)
    images = inputs.to(device, dtype)
    values = attributions if isinstance(attributions, torch.Tensor) else np.asarray(attributions)
    maps = as_maps(values).to(device)
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise DataError(MSG_SHAPE.format(want=tuple(images.shape[2:]), got=tuple(values.shape)))
    n, n_pixels = images.shape[0], images.shape[2] * images.shape[3]
    with model_mode(model, training=False), torch.no_grad():
        if target is None:
            labels = torch.cat(
                [
                    _logits(model, images[s : s + batch_size]).argmax(dim=1)
                    for s in range(0, n, batch_size)
                ]
            )
        else:
            labels = as_label_tensor(target).to(device)
            check_same_length(first="x", n_first=n, second="target", n_second=len(labels))
        reference = _reference(images, baseline)
        start, end = (images, reference) if kind == "deletion" else (reference, images)
        ranks = perturbation_ranks(maps)
        counts = _counts(n_pixels, n_steps).to(device)
        points = n_steps + 1
        scores = torch.empty(n * points, dtype=torch.float64, device=device)
        # Row r of the flattened (example, step) grid is example r // points at step r % points.
        for first in range(0, n * points, batch_size):
            rows = torch.arange(first, min(first + batch_size, n * points), device=device)
            example, step = rows // points, rows % points
            changed = ranks[example] < counts[step][:, None]
            changed = changed.reshape(len(rows), 1, *images.shape[2:])
            batch = torch.where(changed, end[example], start[example])
            probabilities = torch.softmax(_logits(model, batch).to(torch.float64), dim=1)
            scores[rows] = probabilities.gather(1, labels[example][:, None])[:, 0]
    curves = scores.reshape(n, points).cpu().numpy()
    fractions = counts.cpu().numpy() / n_pixels
    auc = np.trapezoid(curves, fractions, axis=1)
    return PerturbationCurves(fractions=fractions, scores=curves, auc=auc, kind=kind)


def _logits(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    output = run_model(model, batch)
    assert isinstance(output, torch.Tensor)
    return output


def _reference(images: torch.Tensor, baseline: str | float) -> torch.Tensor:
    if baseline == "blur":
        return blur(images)
    return torch.full_like(images, float(baseline))


def _check_baseline(baseline: object, *, owner: str) -> str | float:
    if isinstance(baseline, str):
        checked: str = check_param(baseline, Options("blur"), name="baseline", owner=owner)
        return checked
    value: float = check_param(baseline, Real(), name="baseline", owner=owner)
    return value


def deletion_curve(
    *,
    model: nn.Module,
    x: ArrayLike,
    attributions: ArrayLike,
    target: ArrayLike | None = None,
    n_steps: int = 50,
    baseline: str | float = 0.0,
    batch_size: int = 256,
) -> PerturbationCurves:
    """The deletion curve of each example and its area (lower is more faithful).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier whose decisions the maps explain (any device).
    x : array-like, shape (n, C, H, W)
        The inputs.
    attributions : array-like, shape (n, C, H, W), (n, 1, H, W) or (n, H, W)
        The maps; pixels are ranked by their channel sum.
    target : array-like of int, shape (n,), optional
        The explained classes; the model's predictions by default.
    n_steps : int, default=50
        Points of the curve after the first.
    baseline : float or "blur", default=0.0
        What a deleted pixel becomes (0, as in the paper).
    batch_size : int, default=256
        Perturbed copies per forward pass.

    Returns
    -------
    PerturbationCurves

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> model = build_model("canvas-cnn")
    >>> x = torch.rand(2, 1, 8, 8)
    >>> deletion_curve(model=model, x=x, attributions=x, n_steps=4).scores.shape
    (2, 5)
    """
    return _curves(
        kind="deletion",
        model=model,
        x=x,
        attributions=attributions,
        target=target,
        n_steps=n_steps,
        baseline=_check_baseline(baseline, owner="deletion_curve"),
        batch_size=batch_size,
    )


def insertion_curve(
    *,
    model: nn.Module,
    x: ArrayLike,
    attributions: ArrayLike,
    target: ArrayLike | None = None,
    n_steps: int = 50,
    baseline: str | float = "blur",
    batch_size: int = 256,
) -> PerturbationCurves:
    """The insertion curve of each example and its area (higher is more faithful).

    Same parameters as :func:`deletion_curve`; ``baseline`` is the starting image, by default
    the input blurred as in the paper (``"blur"``), or a constant.

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> model = build_model("canvas-cnn")
    >>> x = torch.rand(2, 1, 8, 8)
    >>> insertion_curve(model=model, x=x, attributions=x, n_steps=4).auc.shape
    (2,)
    """
    return _curves(
        kind="insertion",
        model=model,
        x=x,
        attributions=attributions,
        target=target,
        n_steps=n_steps,
        baseline=_check_baseline(baseline, owner="insertion_curve"),
        batch_size=batch_size,
    )

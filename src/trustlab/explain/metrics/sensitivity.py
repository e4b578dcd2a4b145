"""Max-sensitivity (Yeh et al., 2019): how much the map changes under small input changes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, as_label_tensor, model_device_and_dtype
from trustlab.core.params import Integer, Real, Seed, check_param
from trustlab.core.seeding import seeded
from trustlab.core.typing import ArrayLike
from trustlab.explain._captum import captum_module
from trustlab.explain.base import Explainer

__all__ = ["max_sensitivity"]

OWNER = "max_sensitivity"


def max_sensitivity(
    *,
    model: nn.Module,
    x: ArrayLike,
    explainer: Explainer,
    target: ArrayLike,
    radius: float = 0.02,
    n_perturb_samples: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """``max_{||y - x||_inf <= r} ||phi(y) - phi(x)||`` per example, through ``captum.metrics``.

    Yeh et al. (2019); Captum's ``sensitivity_max`` with its defaults: ``n_perturb_samples``
    points drawn uniformly in the L-infinity ball of radius ``radius`` (0.02), Frobenius norm
    of the difference, divided by the norm of ``phi(x)`` as Captum does. Lower is more stable.
    The explained class stays ``target`` for every perturbed copy.

    Parameters
    ----------
    model : torch.nn.Module
    x : array-like, shape (n, ...)
    explainer : Explainer
        The method whose maps are compared (re-run on each perturbed copy).
    target : array-like of int, shape (n,)
    radius : float, default=0.02
    n_perturb_samples : int, default=10
    seed : int, default=0
        Seeds the perturbations.

    Returns
    -------
    np.ndarray of float64, shape (n,)

    Examples
    --------
    >>> import torch
    >>> from trustlab.explain import InputXGradient
    >>> model = torch.nn.Linear(3, 2)
    >>> s = max_sensitivity(model=model, x=torch.rand(4, 3), explainer=InputXGradient(),
    ...                     target=[0] * 4)
    >>> s.shape
    (4,)
    """
    radius = check_param(radius, Real(low=0, closed="neither"), name="radius", owner=OWNER)
    n_perturb_samples = check_param(
        n_perturb_samples, Integer(low=1), name="n_perturb_samples", owner=OWNER
    )
    seed = check_param(seed, Seed, name="seed", owner=OWNER)
    device, dtype = model_device_and_dtype(model)
    inputs = as_input_tensor(x).to(device, dtype)
    labels = as_label_tensor(target).to(device)

    def explanation(
        batch: torch.Tensor | tuple[torch.Tensor, ...], target: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        # Captum passes the unperturbed inputs as a one-element tuple and wants one back.
        if isinstance(batch, tuple):
            return (explainer.attribute(model=model, x=batch[0], target=target).values,)
        return explainer.attribute(model=model, x=batch, target=target).values

    with seeded(seed, device=device):
        values = captum_module("captum.metrics").sensitivity_max(
            explanation,
            inputs,
            perturb_radius=radius,
            n_perturb_samples=n_perturb_samples,
            target=labels,
        )
    result: np.ndarray = values.detach().to("cpu", torch.float64).numpy()
    return result

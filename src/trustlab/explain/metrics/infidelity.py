"""Infidelity (Yeh et al., 2019): how badly the map predicts the effect of perturbations."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, as_label_tensor, model_device_and_dtype
from trustlab.core.params import Boolean, Integer, Real, Seed, check_param
from trustlab.core.seeding import seeded
from trustlab.core.training import model_mode
from trustlab.core.typing import ArrayLike
from trustlab.explain._captum import captum_module

__all__ = ["infidelity"]

OWNER = "infidelity"


def infidelity(
    *,
    model: nn.Module,
    x: ArrayLike,
    attributions: ArrayLike,
    target: ArrayLike,
    noise_std: float = 0.1,
    n_perturb_samples: int = 10,
    normalize: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """``E_I[(I . phi(x) - (f(x) - f(x - I)))^2]`` per example, through ``captum.metrics``.

    Yeh et al. (2019), "On the (in)fidelity and sensitivity of explanations". The perturbation
    ``I`` is Gaussian noise of standard deviation ``noise_std`` (the paper's "noisy baseline";
    its scale is a choice per data set, 0.1 here for inputs in [0, 1]); ``f`` is the logit of
    the target class. With ``normalize`` (default, as in the paper's experiments) the map is
    first scaled by the factor that minimises the error, so the metric ignores the map's scale.
    Lower is better; the gradient of a linear model scores 0 (``I . w = f(x) - f(x - I)``).

    Parameters
    ----------
    model : torch.nn.Module
    x : array-like, shape (n, ...)
    attributions : array-like, shape of ``x``
    target : array-like of int, shape (n,)
    noise_std : float, default=0.1
    n_perturb_samples : int, default=10
        Perturbations per example.
    normalize : bool, default=True
    seed : int, default=0
        Seeds the noise.

    Returns
    -------
    np.ndarray of float64, shape (n,)

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> x = torch.rand(4, 3)
    >>> phi = model.weight[1].detach().expand(4, 3)
    >>> bool(infidelity(model=model, x=x, attributions=phi, target=[1] * 4).max() < 1e-8)
    True
    """
    noise_std = check_param(noise_std, Real(low=0, closed="neither"), name="noise_std", owner=OWNER)
    n_perturb_samples = check_param(
        n_perturb_samples, Integer(low=1), name="n_perturb_samples", owner=OWNER
    )
    normalize = check_param(normalize, Boolean(), name="normalize", owner=OWNER)
    seed = check_param(seed, Seed, name="seed", owner=OWNER)
    device, dtype = model_device_and_dtype(model)
    inputs = as_input_tensor(x).to(device, dtype)
    phi = as_input_tensor(attributions).to(device, dtype)
    labels = as_label_tensor(target).to(device)

    def perturb(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn_like(batch) * noise_std
        return noise, batch - noise

    with model_mode(model, training=False), seeded(seed, device=device), torch.no_grad():
        values = captum_module("captum.metrics").infidelity(
            model,
            perturb,
            inputs,
            phi.expand_as(inputs),
            target=labels,
            n_perturb_samples=n_perturb_samples,
            normalize=normalize,
        )
    result: np.ndarray = values.detach().to("cpu", torch.float64).numpy()
    return result

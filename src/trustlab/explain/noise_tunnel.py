"""SmoothGrad and VarGrad: the mean and the variance of saliency maps of noisy copies."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.params import (
    Boolean,
    Constraint,
    Integer,
    Optional,
    Real,
    Seed,
    store_params,
    validate_params,
)
from trustlab.explain._captum import captum_module
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["SmoothGrad", "VarGrad"]


class _NoiseTunnel(Explainer):
    """Saliency averaged over Gaussian noise, through ``captum.attr.NoiseTunnel``."""

    nt_type: ClassVar[str]
    uses_randomness = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "nt_samples": Integer(low=1),
        "noise_level": Real(low=0),
        "value_range": Real(low=0, closed="neither"),
        "abs": Boolean(),
        "nt_samples_batch_size": Optional(Integer(low=1)),
        "seed": Seed,
    }

    nt_samples: int
    noise_level: float
    value_range: float
    abs: bool
    nt_samples_batch_size: int | None
    seed: int

    def __init__(
        self,
        *,
        nt_samples: int = 50,
        noise_level: float = 0.15,
        value_range: float = 1.0,
        abs: bool = True,
        nt_samples_batch_size: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> None:
        store_params(
            self,
            nt_samples=nt_samples,
            noise_level=noise_level,
            value_range=value_range,
            abs=abs,
            nt_samples_batch_size=nt_samples_batch_size,
            seed=seed,
            batch_size=batch_size,
        )
        validate_params(self)

    @property
    def stdev(self) -> float:
        """The noise's standard deviation: ``noise_level * value_range``."""
        return float(self.noise_level * self.value_range)

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        attr = captum_module()
        tunnel = attr.NoiseTunnel(attr.Saliency(model))
        values: torch.Tensor = tunnel.attribute(
            x,
            nt_type=self.nt_type,
            nt_samples=self.nt_samples,
            nt_samples_batch_size=self.nt_samples_batch_size,
            stdevs=self.stdev,
            target=target,
            abs=self.abs,
        )
        return values


@register_explainer
class SmoothGrad(_NoiseTunnel):
    """SmoothGrad (Smilkov et al., 2017): the mean saliency map over noisy copies of the input.

    Paper defaults: 50 samples, noise of standard deviation 15% of the input range
    (``noise_level * value_range``; ``value_range`` is 1 for images in [0, 1]). Captum's own
    defaults (5 samples, standard deviation 1) differ.

    Parameters
    ----------
    nt_samples : int, default=50
        Noisy copies per input.
    noise_level : float, default=0.15
        Standard deviation as a fraction of ``value_range``.
    value_range : float, default=1.0
        ``x_max - x_min`` of the data.
    abs : bool, default=True
        Average absolute gradients (the paper's maps), or signed ones.
    nt_samples_batch_size : int, optional
        Noisy copies per forward pass inside Captum.
    seed : int, default=0
        Seeds the noise.
    batch_size : int, optional
        Inputs per Captum call.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> SmoothGrad(nt_samples=4).attribute(model=model, x=torch.ones(2, 3)).values.shape
    torch.Size([2, 3])
    """

    name = "smoothgrad"
    nt_type = "smoothgrad"


@register_explainer
class VarGrad(_NoiseTunnel):
    """VarGrad (Adebayo et al., 2018): the variance of saliency maps over noisy copies.

    Same parameters and defaults as :class:`SmoothGrad`.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> VarGrad(nt_samples=4).attribute(model=model, x=torch.ones(2, 3)).values.shape
    torch.Size([2, 3])
    """

    name = "vargrad"
    nt_type = "vargrad"

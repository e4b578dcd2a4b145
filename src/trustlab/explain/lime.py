"""LIME: a sparse linear surrogate fitted to the model on random patch deletions."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.params import Constraint, Integer, Real, Seed, store_params, validate_params
from trustlab.explain._captum import captum_module
from trustlab.explain._patches import patch_mask
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["Lime"]


@register_explainer
class Lime(Explainer):
    """LIME (Ribeiro et al., 2016), through ``captum.attr.Lime``.

    The interpretable features are ``patch x patch`` squares (superpixels on a grid, all
    channels together); ``n_samples`` random subsets of them are kept (the rest set to
    ``baseline``), weighted by Captum's exponential cosine kernel, and fitted with Captum's
    default Lasso (alpha 0.01). Each pixel gets its patch's coefficient. Captum's default of 25
    samples is too few for dozens of patches; trustlab takes 200.

    Parameters
    ----------
    patch : int, default=4
        Side of a feature's square, in pixels (images only; other inputs: one feature per
        value).
    n_samples : int, default=200
        Perturbed copies per input.
    baseline : float, default=0.0
        The value of a removed feature.
    perturbations_per_eval : int, default=64
        Perturbed copies per forward pass.
    seed : int, default=0
        Seeds the random subsets.
    batch_size : int, optional
        Inputs per Captum call.

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> model = build_model("canvas-cnn")
    >>> Lime(n_samples=20).attribute(model=model, x=torch.rand(1, 1, 8, 8)).values.shape
    torch.Size([1, 1, 8, 8])
    """

    name = "lime"
    uses_gradients = False
    uses_randomness = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "patch": Integer(low=1),
        "n_samples": Integer(low=2),
        "baseline": Real(),
        "perturbations_per_eval": Integer(low=1),
        "seed": Seed,
    }

    patch: int
    n_samples: int
    baseline: float
    perturbations_per_eval: int
    seed: int

    def __init__(
        self,
        *,
        patch: int = 4,
        n_samples: int = 200,
        baseline: float = 0.0,
        perturbations_per_eval: int = 64,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> None:
        store_params(
            self,
            patch=patch,
            n_samples=n_samples,
            baseline=baseline,
            perturbations_per_eval=perturbations_per_eval,
            seed=seed,
            batch_size=batch_size,
        )
        validate_params(self)

    def _captum_class(self) -> type:
        cls: type = captum_module().Lime
        return cls

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        values: torch.Tensor = self._captum_class()(model).attribute(
            x,
            baselines=self.baseline,
            target=target,
            feature_mask=patch_mask(x, patch=self.patch),
            n_samples=self.n_samples,
            perturbations_per_eval=self.perturbations_per_eval,
        )
        return values

"""KernelSHAP: Shapley values of patches estimated with LIME's machinery and the Shapley kernel."""

from __future__ import annotations

from trustlab.explain._captum import captum_module
from trustlab.explain.lime import Lime
from trustlab.explain.registry import register_explainer

__all__ = ["KernelShap"]


@register_explainer
class KernelShap(Lime):
    """KernelSHAP (Lundberg and Lee, 2017), through ``captum.attr.KernelShap``.

    A weighted linear regression on random patch coalitions with the Shapley kernel; same
    features and parameters as :class:`~trustlab.explain.lime.Lime` (``patch`` squares,
    ``n_samples`` coalitions, absent patches set to ``baseline``). Captum's default of 25
    samples is too few for dozens of patches; trustlab takes 200.

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> model = build_model("canvas-cnn")
    >>> KernelShap(n_samples=20).attribute(model=model, x=torch.rand(1, 1, 8, 8)).values.shape
    torch.Size([1, 1, 8, 8])
    """

    name = "kernel_shap"

    def _captum_class(self) -> type:
        cls: type = captum_module().KernelShap
        return cls

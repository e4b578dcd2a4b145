"""Explainability: attributions through Captum, and measures of whether they are right.

Attribution methods (one module each, registered in :data:`EXPLAINERS`) wrap Captum's
implementations behind one call shape, :func:`explain` (or a method's
:meth:`~Explainer.attribute`), batched and on any device; the result is an
:class:`Attribution` that records the method, its options and baselines. Captum is imported
on first use (the ``explain`` extra).

Quality metrics (:mod:`trustlab.explain.metrics`) answer "is this map faithful to the model?"
(deletion and insertion, infidelity, ROAR-lite), "is it stable?" (max-sensitivity) and "does it
point at the object?" (pointing game, relevance mass and rank, IoU). The sanity checks of
Adebayo et al. (:func:`model_randomisation`, :func:`data_randomisation`) flag methods whose
maps do not depend on the model. :func:`plot_explanations` draws maps and deletion curves.

Examples
--------
>>> import torch
>>> from trustlab.core.models import build_model
>>> from trustlab.explain import explain
>>> model = build_model("canvas-cnn")
>>> attribution = explain(model=model, x=torch.rand(2, 1, 24, 24), method="grad_cam")
>>> attribution.maps().shape
torch.Size([2, 24, 24])
"""

from trustlab.explain.api import explain
from trustlab.explain.attribution import Attribution, as_maps
from trustlab.explain.base import Explainer
from trustlab.explain.deeplift import DeepLift
from trustlab.explain.grad_cam import GradCam
from trustlab.explain.gradient_shap import GradientShap
from trustlab.explain.input_x_gradient import InputXGradient
from trustlab.explain.integrated_gradients import IntegratedGradients
from trustlab.explain.kernel_shap import KernelShap
from trustlab.explain.lime import Lime
from trustlab.explain.metrics import (
    PerturbationCurves,
    RoarResult,
    attribution_iou,
    deletion_curve,
    infidelity,
    insertion_curve,
    max_sensitivity,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    roar_lite,
)
from trustlab.explain.noise_tunnel import SmoothGrad, VarGrad
from trustlab.explain.occlusion import Occlusion
from trustlab.explain.plots import plot_explanations
from trustlab.explain.registry import (
    EXPLAINERS,
    get_explainer,
    list_explainers,
    make_explainer,
    register_explainer,
)
from trustlab.explain.saliency import Saliency
from trustlab.explain.sanity import (
    RandomisationReport,
    data_randomisation,
    model_randomisation,
    permuted_label_model,
    rank_correlation,
)

__all__ = [
    "EXPLAINERS",
    "Attribution",
    "DeepLift",
    "Explainer",
    "GradCam",
    "GradientShap",
    "InputXGradient",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "Occlusion",
    "PerturbationCurves",
    "RandomisationReport",
    "RoarResult",
    "Saliency",
    "SmoothGrad",
    "VarGrad",
    "as_maps",
    "attribution_iou",
    "data_randomisation",
    "deletion_curve",
    "explain",
    "get_explainer",
    "infidelity",
    "insertion_curve",
    "list_explainers",
    "make_explainer",
    "max_sensitivity",
    "model_randomisation",
    "permuted_label_model",
    "plot_explanations",
    "pointing_game",
    "rank_correlation",
    "register_explainer",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "roar_lite",
]

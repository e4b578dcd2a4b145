"""Every attribution method: shapes, records, devices, Captum's own output, known answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError, UnknownNameError
from trustlab.explain import (
    EXPLAINERS,
    Attribution,
    DeepLift,
    Explainer,
    GradCam,
    InputXGradient,
    IntegratedGradients,
    explain,
    list_explainers,
    make_explainer,
)
from trustlab.explain._layers import MSG_NO_CONV

#: Cheap options for every method, so the conformance test stays fast.
FAST: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"nt_samples": 4},
    "vargrad": {"nt_samples": 4},
    "lime": {"n_samples": 20, "patch": 6},
    "kernel_shap": {"n_samples": 20, "patch": 6},
    "occlusion": {"window": 4, "stride": 4},
}


def captum_reference(name: str, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Any:
    """Captum called directly with the options trustlab passes for ``FAST[name]``."""
    import captum.attr as attr

    options = FAST.get(name, {})
    if name == "saliency":
        return attr.Saliency(model).attribute(x, target=target)
    if name == "input_x_gradient":
        return attr.InputXGradient(model).attribute(x, target=target)
    if name == "integrated_gradients":
        return attr.IntegratedGradients(model).attribute(x, baselines=0.0, target=target, **options)
    if name == "deeplift":
        return attr.DeepLift(model).attribute(x, baselines=0.0, target=target)
    if name == "grad_cam":
        layer = attr.LayerGradCam(model, model.features[5]).attribute(
            x, target=target, relu_attributions=True
        )
        return attr.LayerAttribution.interpolate(layer, (12, 12), interpolate_mode="bilinear")
    if name == "occlusion":
        return attr.Occlusion(model).attribute(
            x, sliding_window_shapes=(1, 4, 4), strides=(1, 4, 4), baselines=0.0, target=target
        )
    return None  # random methods: compared through the seed below


@pytest.mark.parametrize("name", list_explainers())
def test_every_method_follows_the_contract(
    name: str, canvas_model: nn.Module, images: torch.Tensor
) -> None:
    explainer = make_explainer(name, options=FAST.get(name, {}))
    assert isinstance(explainer, Explainer) and explainer.name == name
    canvas_model.train()
    result = explainer.attribute(model=canvas_model, x=images.numpy())
    assert canvas_model.training, "the model's mode is restored"
    assert isinstance(result, Attribution) and result.method == name
    assert result.values.shape[0] == 3 and result.values.shape[2:] == (12, 12)
    assert result.values.device == torch.device("cpu")
    assert torch.isfinite(result.values).all()
    assert not result.values.requires_grad
    predictions = canvas_model.eval()(images).argmax(dim=1)
    assert torch.equal(result.target, predictions)
    assert set(result.options) >= set(FAST.get(name, {}))
    assert result.maps().shape == (3, 12, 12)
    again = explainer.attribute(model=canvas_model, x=images, target=predictions)
    torch.testing.assert_close(again.values, result.values)
    expected = captum_reference(name, canvas_model, images, predictions)
    if expected is not None:
        torch.testing.assert_close(result.values, expected.detach(), rtol=1e-5, atol=1e-6)


def test_batching_does_not_change_the_maps(canvas_model: nn.Module, images: torch.Tensor) -> None:
    whole = IntegratedGradients(n_steps=8).attribute(model=canvas_model, x=images)
    parts = IntegratedGradients(n_steps=8, batch_size=2).attribute(model=canvas_model, x=images)
    torch.testing.assert_close(parts.values, whole.values)


def test_input_x_gradient_is_exact_on_a_linear_model(linear: nn.Module) -> None:
    x = torch.randn(5, 6)
    result = explain(model=linear, x=x, target=2, method="input_x_gradient")
    torch.testing.assert_close(result.values, x * linear.weight[2].detach())
    # The contributions add up to the logit minus the bias.
    logits = linear(x)[:, 2] - linear.bias[2]
    torch.testing.assert_close(result.values.sum(dim=1), logits.detach())


def test_integrated_gradients_and_deeplift_are_complete() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(4, 6)
    gap = (model(x) - model(torch.zeros_like(x)))[:, 1].detach()
    ig = IntegratedGradients(n_steps=200).attribute(model=model, x=x, target=1)
    torch.testing.assert_close(ig.values.sum(dim=1), gap, rtol=1e-3, atol=1e-3)
    deeplift = DeepLift().attribute(model=model, x=x, target=1)
    torch.testing.assert_close(deeplift.values.sum(dim=1), gap, rtol=1e-4, atol=1e-4)
    assert float(ig.baselines) == 0.0 and ig.options["n_steps"] == 200


def test_explain_refuses_unknown_methods_and_options(linear: nn.Module) -> None:
    with pytest.raises(UnknownNameError, match="Known attribution methods: deeplift"):
        explain(model=linear, x=torch.ones(1, 6), method="guided_backprop")
    with pytest.raises(ConfigurationError, match="Unknown option\\(s\\) 'steps'"):
        explain(model=linear, x=torch.ones(1, 6), steps=3)
    with pytest.raises(ConfigurationError, match="The 'n_steps' parameter of IntegratedGradients"):
        IntegratedGradients(n_steps=0)


def test_bad_inputs_and_targets_are_refused(linear: nn.Module) -> None:
    explainer = InputXGradient()
    with pytest.raises(DataError, match="NaN"):
        explainer.attribute(model=linear, x=np.full((2, 6), np.nan))
    with pytest.raises(DataError, match="same number of examples"):
        explainer.attribute(model=linear, x=torch.ones(2, 6), target=[0, 1, 2])
    with pytest.raises(DataError, match="class indices in \\[0, 3\\)"):
        explainer.attribute(model=linear, x=torch.ones(2, 6), target=[0, 5])


def test_grad_cam_finds_or_refuses_its_layer(canvas_model: nn.Module, images: torch.Tensor) -> None:
    named = GradCam(layer="features.3").attribute(model=canvas_model, x=images)
    assert named.values.shape == (3, 1, 12, 12)
    with pytest.raises(ConfigurationError, match=r"no layer named 'conv9'.*'features\.0'"):
        GradCam(layer="conv9").attribute(model=canvas_model, x=images)
    with pytest.raises(ConfigurationError) as info:
        GradCam().attribute(model=nn.Linear(6, 3), x=torch.ones(1, 6))
    assert str(info.value) == MSG_NO_CONV.format(known="none")


def test_registry_holds_the_issue_methods() -> None:
    assert set(EXPLAINERS.names()) == {
        "saliency",
        "input_x_gradient",
        "integrated_gradients",
        "smoothgrad",
        "vargrad",
        "deeplift",
        "gradient_shap",
        "grad_cam",
        "occlusion",
        "lime",
        "kernel_shap",
    }


def test_random_methods_depend_on_their_seed(canvas_model: nn.Module, images: torch.Tensor) -> None:
    first = explain(model=canvas_model, x=images, method="smoothgrad", nt_samples=3, seed=1)
    second = explain(model=canvas_model, x=images, method="smoothgrad", nt_samples=3, seed=2)
    assert not torch.equal(first.values, second.values)
    state = torch.random.get_rng_state()
    explain(model=canvas_model, x=images, method="gradient_shap", seed=1)
    assert torch.equal(torch.random.get_rng_state(), state), "the caller's generator is untouched"

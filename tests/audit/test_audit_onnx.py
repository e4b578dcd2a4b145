"""ONNX models: run by onnxruntime, audited with what works without gradients."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from trustlab.audit import AuditData, run
from trustlab.audit.inputs import load_audit_model
from trustlab.core.data import load_digits
from trustlab.core.models import build_model
from trustlab.core.weights import load_model

pytestmark = pytest.mark.slow


def export(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
        )
    return path


def test_onnx_tabular_model_matches_torch_and_skips_gradient_sections(  # type: ignore[no-untyped-def]
    tabular, tmp_path: Path
) -> None:
    model = load_model(tabular.model)
    path = export(model, torch.from_numpy(tabular.x[:2]), tmp_path / "mlp.onnx")
    loaded = load_audit_model(path)
    assert loaded.kind == "onnx" and not loaded.differentiable
    x = torch.from_numpy(tabular.x[:9])
    assert torch.allclose(loaded.module(x), model(x), atol=1e-5)
    report = run(path, tabular.data, only="performance,robustness,privacy,calibration")
    status = {s.name: s.status for s in report.sections}
    assert status == {
        "performance": "ok",
        "robustness": "not_available",
        "privacy": "ok",
        "calibration": "ok",
    }
    assert "ONNX" in report.section("robustness").reason
    torch_report = run(tabular.model, tabular.data, only="performance")
    assert report.section("performance").metrics["accuracy"] == pytest.approx(
        torch_report.section("performance").metrics["accuracy"]
    )


def test_onnx_image_model_is_attacked_with_square(tmp_path: Path) -> None:
    digits = load_digits()
    torch.manual_seed(0)
    model = build_model("digits-cnn")
    path = export(model, torch.from_numpy(digits.x[:2]), tmp_path / "cnn.onnx")
    data = AuditData("digits", digits.x[:48], digits.y[:48])
    report = run(path, data, only="robustness,explanations")
    robustness = report.section("robustness")
    assert robustness.status == "ok", robustness.reason
    assert robustness.metrics["attack"].startswith("Square")
    assert robustness.metrics["robust_accuracy"] <= robustness.metrics["clean_accuracy"]
    assert report.section("explanations").status == "not_available"
    assert np.isclose(robustness.metrics["eps"], 0.1)

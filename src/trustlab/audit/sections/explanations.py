"""Explanations: a grid of attribution maps and the sanity check of Adebayo et al. (2018).

Everything comes from :mod:`trustlab.explain` (Captum underneath): each method of the profile
(saliency and integrated gradients in ``quick``; SmoothGrad and GradientSHAP added by the
larger profiles) explains the model's prediction on a few evaluation images, drawn by
:func:`~trustlab.explain.plot_explanations`; :func:`~trustlab.explain.model_randomisation`
(cascading parameter randomisation) then checks that each method's maps depend on the model:
a method whose maps stay rank-correlated above 0.5 with the original ones after every layer is
re-initialised explains the image, not the model, and is flagged. Image models only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from trustlab.audit.context import AuditContext
from trustlab.audit.plots import file_figure, has_matplotlib
from trustlab.audit.report import Cell, Figure, SectionResult, SummaryLine, Table
from trustlab.audit.sections.base import Section, pillar_missing, register_section
from trustlab.audit.thresholds import Threshold

__all__ = ["Explanations"]

EXPLAIN_NAMES = ("make_explainer", "model_randomisation", "plot_explanations")


@register_section
class Explanations(Section):
    """Attribution maps of a few images and the model-randomisation sanity check."""

    name: ClassVar[str] = "explanations"
    title: ClassVar[str] = "Explanations"
    thresholds: ClassVar[tuple[str, ...]] = ("explanations.sanity_failures",)

    def available(self, context: AuditContext) -> tuple[bool, str]:
        missing = pillar_missing("trustlab.explain", *EXPLAIN_NAMES)
        if missing:
            return False, missing
        missing = pillar_missing("captum.attr")
        if missing:
            return False, f"{missing} Install it with pip install 'trustlab[explain]'."
        if not context.data.is_image:
            return False, (
                "Attribution maps and their sanity check are drawn for image models; the "
                "inputs are not images (n, channels, height, width)."
            )
        if not context.model.differentiable:
            return False, (
                "The model has no gradients here (ONNX); the gradient attribution methods "
                "need the PyTorch model."
            )
        return True, ""

    def settings(self, context: AuditContext) -> dict[str, Any]:
        return {
            "methods": list(context.profile.explain_methods),
            "n_explain": context.profile.n_explain,
            "seed": context.seed,
        }

    def run(self, context: AuditContext) -> SectionResult:
        from trustlab.explain import make_explainer, model_randomisation

        profile = context.profile
        index = context.subsample(profile.n_explain, salt=5)
        x = torch.from_numpy(context.data.x[index])
        y = context.data.y[index]
        predicted = context.predictions()[index]
        low, high = context.data.bounds
        pictures = (x - low) / max(high - low, 1e-12)
        titles = [
            f"label {label}, predicted {pred}" for label, pred in zip(y, predicted, strict=True)
        ]
        methods = list(profile.explain_methods)
        rows: list[list[Cell]] = []
        checks: dict[str, Any] = {}
        figures: list[Figure] = []
        for step, method in enumerate(methods):
            explainer = make_explainer(method)
            attribution = explainer.attribute(model=context.model.module, x=x)
            figure = self._figure(method, pictures, attribution.values, titles)
            if figure is not None:
                figures.append(figure)
            check = model_randomisation(
                model=context.model.module, x=x, explainer=explainer, seed=context.seed
            )
            correlations = [float(value) for value in np.asarray(check.correlations)]
            checks[method] = {
                "steps": list(check.steps),
                "correlations": correlations,
                "final_correlation": correlations[-1] if correlations else None,
                "threshold": float(check.threshold),
                "flagged": bool(check.flagged),
                "reason": check.reason,
            }
            rows.append(
                [
                    method,
                    correlations[-1] if correlations else None,
                    bool(check.flagged),
                    check.reason,
                ]
            )
            context.progress(step + 1, len(methods))
        failures = sum(1 for item in checks.values() if item["flagged"])
        return self.result(
            metrics={
                "n_examples": len(index),
                "methods": methods,
                "model_randomisation": checks,
                "sanity_failures": failures,
            },
            tables=[
                Table(
                    "Model-randomisation sanity check (Adebayo et al. 2018)",
                    ["method", "rank correlation after randomisation", "flagged", "finding"],
                    rows,
                )
            ],
            figures=figures,
            notes=[
                f"Maps explain the model's predicted class on {len(index)} evaluation images.",
                "A flagged method's maps barely change when the model's weights are replaced by "
                "random ones: they show the input's edges, not what the model uses.",
            ],
            options=self.settings(context),
        )

    @staticmethod
    def _figure(
        method: str, pictures: torch.Tensor, values: torch.Tensor, titles: list[str]
    ) -> Figure | None:
        if not has_matplotlib():
            return None
        from trustlab.explain import plot_explanations

        with tempfile.TemporaryDirectory() as folder:
            path = plot_explanations(
                x=pictures.numpy(),
                attributions=values.detach().cpu().numpy(),
                path=Path(folder) / f"{method}.png",
                titles=titles,
                max_examples=len(titles),
            )
            return file_figure(
                f"Attribution maps: {method}",
                f"Each row: an evaluation image and the {method} map of the predicted class "
                "over it.",
                path,
            )

    def summarise(self, result: SectionResult, thresholds: Mapping[str, Threshold]) -> SummaryLine:
        threshold = thresholds["explanations.sanity_failures"]
        metrics = result.metrics
        failures = int(metrics["sanity_failures"])
        methods = metrics["methods"]
        flagged = [m for m, item in metrics["model_randomisation"].items() if item["flagged"]]
        headline = (
            f"{failures} of {len(methods)} attribution methods fail the model-randomisation check"
            + (f" ({', '.join(flagged)})" if flagged else "")
        )
        return SummaryLine(
            section=self.name,
            title=self.title,
            light=threshold.light(float(failures)),
            headline=headline,
            metric=threshold.name,
            value=float(failures),
            rule=threshold.rule(),
        )

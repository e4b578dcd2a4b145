"""Calibration and uncertainty: ECE with a reliability diagram, conformal coverage per group.

Everything comes from :mod:`trustlab.uncertainty`: :func:`calibration_report` (ECE, MCE,
class-wise ECE, Brier score and NLL with bootstrap intervals), :func:`plot_reliability_diagram`
(Guo et al. 2017) and split conformal prediction with :class:`LAC` (Sadinle et al. 2019) at
90% target coverage, calibrated on one half of the evaluation examples and checked on the
other, with :func:`conformal_report` giving the coverage overall, per class and per group.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from trustlab.audit.context import AuditContext
from trustlab.audit.plots import file_figure, has_matplotlib
from trustlab.audit.report import Cell, SectionResult, SummaryLine, Table
from trustlab.audit.sections.base import Section, pillar_missing, register_section
from trustlab.audit.thresholds import Threshold

__all__ = ["Calibration"]

ALPHA = 0.1
N_BINS = 15
CALIBRATION_NAMES = ("calibration_report", "plot_reliability_diagram")
CONFORMAL_NAMES = ("LAC", "conformal_report")
MIN_CONFORMAL = 20


@register_section
class Calibration(Section):
    """Top-label calibration of the softmax and conformal coverage."""

    name: ClassVar[str] = "calibration"
    title: ClassVar[str] = "Calibration and uncertainty"
    thresholds: ClassVar[tuple[str, ...]] = ("calibration.ece",)

    def available(self, context: AuditContext) -> tuple[bool, str]:
        missing = pillar_missing("trustlab.uncertainty", *CALIBRATION_NAMES)
        if missing:
            return False, missing
        return True, ""

    def settings(self, context: AuditContext) -> dict[str, Any]:
        return {
            "n_bins": N_BINS,
            "alpha": ALPHA,
            "n_bootstrap": context.profile.n_bootstrap,
            "attributes": sorted(context.groups),
            "seed": context.seed,
        }

    def run(self, context: AuditContext) -> SectionResult:
        from trustlab.uncertainty import calibration_report

        index = context.evaluation_index()
        probs = torch.softmax(context.logits()[index].double(), dim=1).numpy()
        y = context.data.y[index]
        report = calibration_report(
            y_true=y,
            probs=probs,
            n_bins=N_BINS,
            n_resamples=context.profile.n_bootstrap,
            seed=context.seed,
        )
        context.progress(1, 3)
        metrics: dict[str, Any] = {
            "n_examples": len(index),
            "ece": report["ece"].estimate,
            "calibration": {name: asdict(ci) for name, ci in report.items()},
        }
        tables = [
            Table(
                "Calibration metrics",
                ["metric", "value", "interval"],
                [
                    [name, ci.estimate, f"[{ci.low:.4f}, {ci.high:.4f}]"]
                    for name, ci in report.items()
                ],
            )
        ]
        figures = []
        if has_matplotlib():
            from trustlab.uncertainty import plot_reliability_diagram

            with tempfile.TemporaryDirectory() as folder:
                path = plot_reliability_diagram(
                    y_true=y, probs=probs, path=Path(folder) / "reliability.png", n_bins=N_BINS
                )
                figures.append(
                    file_figure(
                        "Reliability diagram",
                        "Accuracy against top-label confidence in equal-width bins; a "
                        "calibrated model follows the diagonal.",
                        path,
                    )
                )
        context.progress(2, 3)
        notes = [
            "ECE: top-label expected calibration error in 15 equal-width bins (Guo et al. "
            "2017); intervals are percentile bootstraps."
        ]
        conformal = self._conformal(context, probs, y, index, tables, notes)
        if conformal is not None:
            metrics["conformal"] = conformal
        context.progress(3, 3)
        return self.result(
            metrics=metrics,
            tables=tables,
            figures=figures,
            notes=notes,
            options=self.settings(context),
        )

    def _conformal(
        self,
        context: AuditContext,
        probs: np.ndarray,
        y: np.ndarray,
        index: np.ndarray,
        tables: list[Table],
        notes: list[str],
    ) -> dict[str, Any] | None:
        missing = pillar_missing("trustlab.uncertainty", *CONFORMAL_NAMES)
        if missing:
            notes.append(f"Conformal coverage is left out: {missing}")
            return None
        if len(y) < 2 * MIN_CONFORMAL:
            notes.append(
                f"Conformal coverage is left out: it needs {2 * MIN_CONFORMAL} evaluation "
                f"examples or more, and there are {len(y)}."
            )
            return None
        from trustlab.uncertainty import LAC, conformal_report

        rng = np.random.default_rng([context.seed, 4])
        order = rng.permutation(len(y))
        half = len(y) // 2
        fit, test = order[:half], order[half:]
        attribute = sorted(context.groups)[0] if context.groups else None
        groups = None
        if attribute is not None:
            groups = np.asarray(context.groups[attribute])[index][test].astype(str)
        predictor = LAC(alpha=ALPHA).fit(probs=probs[fit], y=y[fit])
        sets = predictor.predict(probs=probs[test])
        report = conformal_report(
            sets=sets,
            y_true=y[test],
            groups=groups,
            n_resamples=context.profile.n_bootstrap,
            seed=context.seed,
        )
        rows: list[list[Cell]] = [
            [
                "overall",
                report.overall.n,
                report.overall.coverage.estimate,
                f"[{report.overall.coverage.low:.3f}, {report.overall.coverage.high:.3f}]",
                report.overall.mean_size.estimate,
            ]
        ]
        for name, cell in report.by_group.items():
            rows.append(
                [
                    f"{attribute}={name}",
                    cell.n,
                    cell.coverage.estimate,
                    f"[{cell.coverage.low:.3f}, {cell.coverage.high:.3f}]",
                    cell.mean_size.estimate,
                ]
            )
        tables.append(
            Table(
                f"Conformal coverage (LAC, target {1 - ALPHA:.0%})",
                ["examples", "n", "coverage", "interval", "mean set size"],
                rows,
            )
        )
        notes.append(
            f"Conformal sets (LAC) are calibrated on {len(fit)} evaluation examples and checked "
            f"on the other {len(test)}; marginal coverage is guaranteed, coverage per group is "
            "not, which is what the table shows."
        )
        return {
            "method": "LAC",
            "alpha": ALPHA,
            "n_calibration": len(fit),
            "n_test": len(test),
            "coverage": asdict(report.overall.coverage),
            "mean_set_size": asdict(report.overall.mean_size),
            "empty_fraction": report.empty_fraction,
            "attribute": attribute,
            "coverage_by_group": {
                name: asdict(cell.coverage) for name, cell in report.by_group.items()
            },
            "worst_group_coverage": report.worst_group_coverage(),
        }

    def summarise(self, result: SectionResult, thresholds: Mapping[str, Threshold]) -> SummaryLine:
        threshold = thresholds["calibration.ece"]
        metrics = result.metrics
        value = float(metrics["ece"])
        ci = metrics["calibration"]["ece"]
        headline = f"ECE {value:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"
        conformal = metrics.get("conformal")
        if conformal:
            headline += (
                f"; conformal coverage {conformal['coverage']['estimate']:.3f} "
                f"(target {1 - conformal['alpha']:.2f})"
            )
        return SummaryLine(
            section=self.name,
            title=self.title,
            light=threshold.light(value),
            headline=headline,
            metric=threshold.name,
            value=value,
            rule=threshold.rule(),
        )

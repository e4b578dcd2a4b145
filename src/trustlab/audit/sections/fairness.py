"""Fairness: group metrics with bootstrap intervals, parity gaps and an intersectional table.

Everything comes from :class:`trustlab.fairness.GroupMetrics` (Fairlearn's ``MetricFrame`` for
PyTorch models): accuracy, selection rate, true- and false-positive rates by group, their
between-group differences (the demographic-parity and equalized-odds gaps), and the same over
the intersections of several sensitive attributes. For a multi-class model only accuracy is
compared (the rates are defined for a positive class).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from trustlab.audit.context import AuditContext
from trustlab.audit.plots import bar_figure
from trustlab.audit.report import Cell, Figure, SectionResult, SummaryLine, Table
from trustlab.audit.sections.base import Section, pillar_missing, register_section
from trustlab.audit.thresholds import Threshold
from trustlab.core.errors import DataError

__all__ = ["Fairness"]

BINARY_METRICS = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate")
GAP_NAMES = {
    "accuracy": "accuracy difference",
    "selection_rate": "demographic parity difference",
    "true_positive_rate": "equal opportunity difference",
    "false_positive_rate": "false-positive-rate difference",
}


@register_section
class Fairness(Section):
    """Disaggregated metrics over each sensitive attribute and their intersections."""

    name: ClassVar[str] = "fairness"
    title: ClassVar[str] = "Fairness"
    thresholds: ClassVar[tuple[str, ...]] = ("fairness.max_gap",)

    def available(self, context: AuditContext) -> tuple[bool, str]:
        missing = pillar_missing("trustlab.fairness", "GroupMetrics")
        if missing:
            return False, missing
        if not context.groups:
            return False, (
                "No sensitive attribute with two or more groups: add a groups array (or "
                "sensitive_<name> arrays) to the data and name it with --sensitive."
            )
        return True, ""

    def settings(self, context: AuditContext) -> dict[str, Any]:
        return {
            "attributes": sorted(context.groups),
            "n_bootstrap": context.profile.n_bootstrap,
            "seed": context.seed,
        }

    def _frame(self, context: AuditContext, features: Any, notes: list[str], what: str) -> Any:
        from trustlab.fairness import GroupMetrics

        binary = context.n_classes == 2
        metrics = list(BINARY_METRICS) if binary else ["accuracy"]
        index = context.evaluation_index()
        y_true, y_pred = context.data.y[index], context.predictions()[index]
        attempts = [
            (metrics, context.profile.n_bootstrap),
            (
                ["accuracy", "selection_rate"] if binary else ["accuracy"],
                context.profile.n_bootstrap,
            ),
            (["accuracy"], 0),
        ]
        last: DataError | None = None
        for names, n_bootstrap in attempts:
            try:
                return GroupMetrics(
                    metrics=names,
                    y_true=y_true,
                    y_pred=y_pred,
                    sensitive_features=features,
                    pos_label=1 if binary else None,
                    n_bootstrap=n_bootstrap,
                    seed=context.seed,
                )
            except DataError as err:
                notes.append(f"{what}: {err} Fewer figures are shown for it.")
                last = err
        assert last is not None
        raise last

    def run(self, context: AuditContext) -> SectionResult:
        notes: list[str] = []
        tables: list[Table] = []
        figures: list[Figure] = []
        attributes: dict[str, Any] = {}
        gaps: list[tuple[float, str, str]] = []
        total = len(context.groups) + (1 if len(context.groups) >= 2 else 0)
        for step, (attribute, values) in enumerate(sorted(context.groups.items()), start=1):
            codes = np.asarray(values)[context.evaluation_index()].astype(str)
            frame = self._frame(context, codes, notes, attribute)
            attributes[attribute] = frame.to_dict()
            tables.append(self._group_table(frame, f"By {attribute}"))
            differences = frame.difference()
            gap_ci = frame.difference_ci() if frame.n_bootstrap else {}
            for metric, value in differences.items():
                gaps.append((float(value), attribute, metric))
            tables.append(
                Table(
                    f"Parity gaps over {attribute} (largest minus smallest group)",
                    ["gap", "value", "interval"],
                    [
                        [
                            GAP_NAMES.get(metric, metric),
                            float(value),
                            f"[{gap_ci[metric].low:.3f}, {gap_ci[metric].high:.3f}]"
                            if metric in gap_ci
                            else None,
                        ]
                        for metric, value in differences.items()
                    ],
                )
            )
            accuracy_ci = (
                {g: (ci.low, ci.high) for g, ci in frame.by_group_ci["accuracy"].items()}
                if frame.n_bootstrap
                else None
            )
            figure = bar_figure(
                f"Accuracy by {attribute}",
                f"Accuracy of each group of {attribute}, with bootstrap intervals.",
                dict(frame.by_group["accuracy"]),
                intervals=accuracy_ci,
                ylabel="accuracy",
            )
            if figure is not None:
                figures.append(figure)
            context.progress(step, total)
        intersectional = None
        if len(context.groups) >= 2:
            index = context.evaluation_index()
            features = {
                name: np.asarray(values)[index].astype(str)
                for name, values in context.groups.items()
            }
            frame = self._frame(context, features, notes, "intersections")
            intersectional = frame.to_dict()
            tables.append(self._group_table(frame, "Intersectional groups"))
            context.progress(total, total)
        worst = max(gaps) if gaps else (float("nan"), "", "")
        return self.result(
            metrics={
                "attributes": attributes,
                "intersectional": intersectional,
                "max_gap": worst[0],
                "max_gap_attribute": worst[1],
                "max_gap_metric": worst[2],
            },
            tables=tables,
            figures=figures,
            notes=[
                "Gaps are between-group differences (largest minus smallest group value); "
                "intervals are percentile bootstraps resampled within each (group, label) cell.",
                *notes,
            ],
            options=self.settings(context),
        )

    @staticmethod
    def _group_table(frame: Any, title: str) -> Table:
        with_ci = bool(frame.n_bootstrap)
        cis = frame.by_group_ci if with_ci else {}
        rows: list[list[Cell]] = []
        for group in frame.group_names:
            row: list[Cell] = [group, frame.group_sizes[group]]
            for metric in frame.metric_names:
                value = frame.by_group[metric][group]
                if with_ci:
                    ci = cis[metric][group]
                    row.append(f"{value:.3f} [{ci.low:.3f}, {ci.high:.3f}]")
                else:
                    row.append(float(value))
            rows.append(row)
        return Table(title, ["group", "examples", *frame.metric_names], rows)

    def summarise(self, result: SectionResult, thresholds: Mapping[str, Threshold]) -> SummaryLine:
        threshold = thresholds["fairness.max_gap"]
        metrics = result.metrics
        value = float(metrics["max_gap"])
        metric = GAP_NAMES.get(metrics["max_gap_metric"], metrics["max_gap_metric"])
        return SummaryLine(
            section=self.name,
            title=self.title,
            light=threshold.light(value),
            headline=f"largest gap {value:.3f}: {metric} over {metrics['max_gap_attribute']}",
            metric=threshold.name,
            value=value,
            rule=threshold.rule(),
        )

"""Performance: accuracy with a bootstrap interval, per-class recall and the confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from trustlab.audit.context import AuditContext
from trustlab.audit.plots import heatmap_figure
from trustlab.audit.report import Cell, SectionResult, SummaryLine, Table
from trustlab.audit.sections.base import Section, register_section
from trustlab.audit.thresholds import Threshold
from trustlab.core.metrics import bootstrap_ci

__all__ = ["Performance", "accuracy"]


def accuracy(*, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of ``y_pred`` equal to ``y_true``."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


@register_section
class Performance(Section):
    """Accuracy (percentile bootstrap interval, :func:`trustlab.core.metrics.bootstrap_ci`),
    recall of each class and the confusion matrix, on the evaluation examples (every example,
    or the non-members when the data carry member flags)."""

    name: ClassVar[str] = "performance"
    title: ClassVar[str] = "Performance"
    thresholds: ClassVar[tuple[str, ...]] = ("performance.accuracy",)

    def available(self, context: AuditContext) -> tuple[bool, str]:
        return True, ""

    def settings(self, context: AuditContext) -> dict[str, object]:
        return {"n_bootstrap": context.profile.n_bootstrap, "seed": context.seed}

    def run(self, context: AuditContext) -> SectionResult:
        index = context.evaluation_index()
        y_true = context.data.y[index]
        y_pred = context.predictions()[index]
        context.progress(1, 3)
        interval = bootstrap_ci(
            accuracy,
            arrays={"y_true": y_true, "y_pred": y_pred},
            n_resamples=context.profile.n_bootstrap,
            seed=context.seed,
        )
        context.progress(2, 3)
        k = context.n_classes
        matrix = confusion_matrix(y_true, y_pred, k)
        names = self._class_names(context, k)
        support = matrix.sum(axis=1)
        recall = np.divide(np.diag(matrix), support, out=np.full(k, np.nan), where=support > 0)
        rows: list[list[Cell]] = [
            [names[c], int(support[c]), None if support[c] == 0 else float(recall[c])]
            for c in range(k)
        ]
        figures = [
            heatmap_figure(
                "Confusion matrix",
                "Counts of each true class (rows) against each predicted class (columns).",
                matrix,
                labels=names,
                xlabel="predicted",
                ylabel="true",
            )
        ]
        context.progress(3, 3)
        return self.result(
            metrics={
                "accuracy": interval.estimate,
                "accuracy_ci": [interval.low, interval.high],
                "confidence": interval.confidence,
                "n_examples": len(y_true),
                "n_classes": k,
                "confusion_matrix": matrix.tolist(),
                "class_names": names,
                "recall_by_class": {
                    names[c]: None if support[c] == 0 else float(recall[c]) for c in range(k)
                },
            },
            tables=[Table("Recall by class", ["class", "examples", "recall"], rows)],
            figures=[figure for figure in figures if figure is not None],
            options=self.settings(context),
        )

    @staticmethod
    def _class_names(context: AuditContext, k: int) -> list[str]:
        classes = context.data.classes
        if classes and len(classes) == k:
            return [str(name) for name in classes]
        return [str(c) for c in range(k)]

    def summarise(self, result: SectionResult, thresholds: Mapping[str, Threshold]) -> SummaryLine:
        threshold = thresholds["performance.accuracy"]
        value = float(result.metrics["accuracy"])
        low, high = result.metrics["accuracy_ci"]
        return SummaryLine(
            section=self.name,
            title=self.title,
            light=threshold.light(value),
            headline=(
                f"accuracy {value:.3f} [{low:.3f}, {high:.3f}] on "
                f"{result.metrics['n_examples']} examples"
            ),
            metric=threshold.name,
            value=value,
            rule=threshold.rule(),
        )

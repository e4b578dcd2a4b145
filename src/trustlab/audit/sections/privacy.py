"""Privacy: membership inference against the model, or the generalisation gap as a proxy.

With member flags (a ``member`` array in the data) or the model's training data
(``--train-data``), the attacks of :mod:`trustlab.privacy` score every candidate:
:class:`~trustlab.privacy.LossThresholdAttack` (Yeom et al. 2018) always, and
:class:`~trustlab.privacy.RMIA` (Zarifzadeh et al. 2024, offline) with reference models in the
``standard`` and ``thorough`` profiles when the model's architecture is registered. They are
scored by :func:`~trustlab.privacy.membership_report` (AUC, TPR at low FPR, advantage, with
bootstrap intervals) and drawn by :func:`~trustlab.privacy.plot_roc` on log-log axes. The
generalisation gap (accuracy on members minus accuracy on non-members) is reported beside them,
labelled as the proxy it is.

RMIA's reference models are trained on a third of the non-members with a generic recipe (Adam,
learning rate 1e-3, batch 64, the profile's epochs), which need not be the target's; the paper
assumes the target's recipe, so RMIA may be weaker here than in the paper. Its population
samples are another quarter of the non-members, and its candidates the remaining non-members
with as many members; every attack in the table is scored on its own candidates.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from trustlab.audit.context import AuditContext
from trustlab.audit.plots import file_figure, has_matplotlib
from trustlab.audit.report import Cell, SectionResult, SummaryLine, Table
from trustlab.audit.sections.base import Section, pillar_missing, register_section
from trustlab.audit.thresholds import Threshold
from trustlab.core.progress import ProgressEvent

__all__ = ["Privacy"]

FPRS = (0.001, 0.01, 0.05)
MIN_PER_CLASS = 10
WORSE = {"grey": 0, "green": 1, "amber": 2, "red": 3}


def _candidates(context: AuditContext) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, member, logits) of the membership candidates."""
    data = context.data
    if data.member is not None:
        return data.x, data.y, data.member, context.logits("data").numpy()
    assert data.x_train is not None and data.y_train is not None
    n = min(len(data.x_train), data.n_examples)
    rng = np.random.default_rng([context.seed, 2])
    inside = np.sort(rng.choice(len(data.x_train), size=n, replace=False))
    outside = np.sort(rng.choice(data.n_examples, size=n, replace=False))
    x = np.concatenate([data.x_train[inside], data.x[outside]])
    y = np.concatenate([data.y_train[inside], data.y[outside]])
    member = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    logits = np.concatenate(
        [context.logits("train").numpy()[inside], context.logits("data").numpy()[outside]]
    )
    return x, y, member, logits


def _report_dict(report: Any) -> dict[str, Any]:
    return {
        "auc": asdict(report.auc),
        "tpr_at_fpr": {f"{fpr:g}": asdict(ci) for fpr, ci in report.tpr.items()},
        "advantage": asdict(report.advantage) if report.advantage is not None else None,
        "n_members": report.n_members,
        "n_non_members": report.n_non_members,
    }


@register_section
class Privacy(Section):
    """Membership-inference attacks with TPR at low FPR, or the generalisation gap."""

    name: ClassVar[str] = "privacy"
    title: ClassVar[str] = "Privacy"
    thresholds: ClassVar[tuple[str, ...]] = (
        "privacy.tpr_at_1pct_fpr",
        "privacy.generalisation_gap",
    )

    def available(self, context: AuditContext) -> tuple[bool, str]:
        missing = pillar_missing(
            "trustlab.privacy", "LossThresholdAttack", "RMIA", "membership_report"
        )
        if missing:
            return False, missing
        data = context.data
        if data.member is None and data.x_train is None:
            return False, (
                "Membership leakage needs to know which examples the model trained on: add a "
                "member array (1 = trained on it) to the .npz, or pass --train-data. Without "
                "them not even the generalisation gap can be measured."
            )
        if data.member is not None:
            counts = np.bincount(data.member.astype(np.int64), minlength=2)
            if counts.min() < MIN_PER_CLASS:
                return False, (
                    f"The member flags mark {counts[1]} members and {counts[0]} non-members; "
                    f"membership attacks need at least {MIN_PER_CLASS} of each."
                )
        return True, ""

    def _runs_rmia(self, context: AuditContext) -> tuple[bool, str]:
        if context.profile.n_reference_models == 0:
            return False, f"RMIA is left out of the {context.profile.name!r} profile."
        if context.model.architecture is None:
            return False, (
                "RMIA needs reference models of the target's architecture; this model's "
                "architecture is not registered (load it from a trustlab safetensors file or "
                "build it with trustlab.core.models.build_model)."
            )
        return True, ""

    def settings(self, context: AuditContext) -> dict[str, Any]:
        profile = context.profile
        return {
            "fprs": list(FPRS),
            "n_bootstrap": profile.n_bootstrap,
            "n_reference_models": profile.n_reference_models,
            "reference_epochs": profile.reference_epochs,
            "seed": context.seed,
        }

    def run(self, context: AuditContext) -> SectionResult:
        from trustlab.privacy import LossThresholdAttack, membership_report

        profile = context.profile
        x, y, member, logits = _candidates(context)
        predictions = logits.argmax(axis=1)
        correct = predictions == y
        train_accuracy = float(correct[member].mean())
        test_accuracy = float(correct[~member].mean())
        scores = {"LOSS": LossThresholdAttack().infer_from_logits(logits=logits, y=y)}
        context.progress(1, 4)
        reports: dict[str, Any] = {
            "loss_threshold": membership_report(
                y_true=member,
                scores=scores["LOSS"],
                fprs=FPRS,
                n_resamples=profile.n_bootstrap,
                seed=context.seed,
            )
        }
        notes = [
            "The generalisation gap (accuracy on members minus on non-members) is a proxy for "
            "leakage, not an attack: a model can leak with no gap.",
            "TPR at an FPR f rests on about f times the number of non-members false positives; "
            "at 0.1% FPR it needs a thousand non-members or more to mean much.",
        ]
        roc_labels, roc_scores = member, dict(scores)
        context.progress(2, 4)
        rmia, why_not = self._runs_rmia(context)
        if rmia:
            rmia_report, rmia_candidates, rmia_scores = self._rmia(context, x, y, member)
            reports["rmia"] = rmia_report
            roc_labels = member[rmia_candidates]
            roc_scores = {"LOSS": scores["LOSS"][rmia_candidates], "RMIA": rmia_scores}
            notes.append(
                f"RMIA (offline, {profile.n_reference_models} reference models trained for "
                f"{profile.reference_epochs} epochs with Adam, lr 1e-3) is scored on its own "
                f"{len(rmia_candidates)} candidates; the ROC plot shows both attacks on those."
            )
        else:
            notes.append(why_not)
        context.progress(3, 4)
        rows: list[list[Cell]] = []
        for name, report in reports.items():
            rows.append(
                [
                    name,
                    report.n_members,
                    report.n_non_members,
                    report.auc.estimate,
                    *[report.tpr[fpr].estimate for fpr in FPRS],
                    report.advantage.estimate if report.advantage is not None else None,
                ]
            )
        best = max(float(report.tpr[0.01].estimate) for report in reports.values())
        figures = []
        if has_matplotlib():
            from trustlab.privacy import plot_roc

            with tempfile.TemporaryDirectory() as folder:
                path = plot_roc(
                    y_true=roc_labels,
                    scores=roc_scores,
                    path=Path(folder) / "roc.png",
                    title="Membership inference ROC (log-log)",
                )
                figures.append(
                    file_figure(
                        "Membership inference ROC (log-log axes)",
                        "ROC curve of each membership attack on log-log axes; the diagonal is "
                        "chance.",
                        path,
                    )
                )
        context.progress(4, 4)
        return self.result(
            metrics={
                "membership_source": "member flags"
                if context.data.member is not None
                else "train data",
                "n_members": int(member.sum()),
                "n_non_members": int((~member).sum()),
                "train_accuracy": train_accuracy,
                "test_accuracy": test_accuracy,
                "generalisation_gap": train_accuracy - test_accuracy,
                "attacks": {name: _report_dict(report) for name, report in reports.items()},
                "best_tpr_at_1pct_fpr": best,
            },
            tables=[
                Table(
                    "Membership attacks",
                    [
                        "attack",
                        "members",
                        "non-members",
                        "AUC",
                        *[f"TPR at {fpr:.1%} FPR" for fpr in FPRS],
                        "advantage",
                    ],
                    rows,
                ),
                Table(
                    "Generalisation gap (proxy)",
                    ["accuracy on members", "accuracy on non-members", "gap"],
                    [[train_accuracy, test_accuracy, train_accuracy - test_accuracy]],
                ),
            ],
            figures=figures,
            notes=notes,
            options=self.settings(context),
        )

    def _rmia(
        self,
        context: AuditContext,
        x: np.ndarray,
        y: np.ndarray,
        member: np.ndarray,
    ) -> tuple[Any, np.ndarray, np.ndarray]:
        from trustlab.privacy import RMIA, ReferenceModels, membership_report

        assert context.model.architecture is not None
        architecture, arguments = context.model.architecture
        profile = context.profile
        rng = np.random.default_rng([context.seed, 3])
        outside = rng.permutation(np.flatnonzero(~member))
        inside = rng.permutation(np.flatnonzero(member))
        n_pool = len(outside) // 2
        n_population = len(outside) // 4
        pool = outside[:n_pool]
        population = outside[n_pool : n_pool + n_population]
        non_members = outside[n_pool + n_population :]
        members = inside[: len(non_members)]
        candidates = np.sort(np.concatenate([members, non_members]))

        def progress(event: ProgressEvent) -> None:
            context.progress(2 + (event.fraction or 0.0), 4)

        reference = ReferenceModels.train(
            architecture=architecture,
            arguments=arguments,
            x=x[pool],
            y=y[pool],
            n_models=profile.n_reference_models,
            epochs=profile.reference_epochs,
            seed=context.seed,
            progress=progress,
        )
        attack = RMIA(reference=reference, population_x=x[population], population_y=y[population])
        scores = attack.infer(model=context.model.module, x=x[candidates], y=y[candidates])
        report = membership_report(
            y_true=member[candidates],
            scores=scores,
            fprs=FPRS,
            n_resamples=profile.n_bootstrap,
            seed=context.seed,
        )
        return report, candidates, np.asarray(scores, dtype=np.float64)

    def summarise(self, result: SectionResult, thresholds: Mapping[str, Threshold]) -> SummaryLine:
        tpr_rule = thresholds["privacy.tpr_at_1pct_fpr"]
        gap_rule = thresholds["privacy.generalisation_gap"]
        metrics = result.metrics
        best = float(metrics["best_tpr_at_1pct_fpr"])
        gap = float(metrics["generalisation_gap"])
        lights = [tpr_rule.light(best), gap_rule.light(gap)]
        light = max(lights, key=lambda item: WORSE[item])
        attacks = ", ".join(metrics["attacks"])
        return SummaryLine(
            section=self.name,
            title=self.title,
            light=light,
            headline=(
                f"best TPR at 1% FPR {best:.3f} ({attacks}); generalisation gap {gap:.3f} (proxy)"
            ),
            metric=tpr_rule.name,
            value=best,
            rule=f"TPR at 1% FPR: {tpr_rule.rule()}; gap: {gap_rule.rule()}; the worse light shows",
        )

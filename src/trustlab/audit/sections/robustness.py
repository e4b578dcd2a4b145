"""Robustness: sanity checks, then PGD (quick) or AutoAttack (standard) at the stated eps, and
robust accuracy against eps.

Everything comes from :mod:`trustlab.robustness`: :class:`~trustlab.robustness.PGD` (evaluation
mode: an example counts as broken if any iterate fools the model),
:class:`~trustlab.robustness.AutoAttack` (its standard version, resumable through a state file
in the output folder) and :func:`~trustlab.robustness.run_sanity_checks` (gradient masking and
randomness). A model without gradients (ONNX) is attacked with
:class:`~trustlab.robustness.Square`, the score-based black-box attack, and the report says so.
The threat model is Linf of radius ``eps`` inside the data's input range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from trustlab.audit.context import AuditContext
from trustlab.audit.plots import curve_figure
from trustlab.audit.report import Cell, SectionResult, SummaryLine, Table
from trustlab.audit.sections.base import Section, pillar_missing, register_section
from trustlab.audit.thresholds import Threshold
from trustlab.core.progress import ProgressEvent

__all__ = ["Robustness"]

NORM = "Linf"
#: The attacks of AutoAttack's standard version (APGD-CE, APGD-T, FAB-T, Square).
N_CASCADE_STAGES = 4
#: APGD-T and FAB-T (targeted, DLR loss) need this many classes; fewer run APGD-CE (+ Square).
MIN_TARGETED_CLASSES = 4


@register_section
class Robustness(Section):
    """Robust accuracy at the stated Linf eps, its curve against eps, and the sanity checks."""

    name: ClassVar[str] = "robustness"
    title: ClassVar[str] = "Robustness"
    thresholds: ClassVar[tuple[str, ...]] = ("robustness.robust_accuracy",)

    def available(self, context: AuditContext) -> tuple[bool, str]:
        missing = pillar_missing("trustlab.robustness", "PGD", "AutoAttack", "run_sanity_checks")
        if missing:
            return False, missing
        if not context.model.differentiable and not context.data.is_image:
            return False, (
                "The model has no gradients (ONNX) and the inputs are not images, so neither "
                "the white-box attacks nor Square (a black-box attack on images) apply."
            )
        return True, ""

    def settings(self, context: AuditContext) -> dict[str, Any]:
        profile = context.profile
        return {
            "norm": NORM,
            "eps": context.eps,
            "bounds": list(context.data.bounds),
            "n_attack": profile.n_attack,
            "attack": profile.attack if context.model.differentiable else "square",
            "pgd_steps": profile.pgd_steps,
            "eps_factors": list(profile.eps_factors),
            "sanity_examples": profile.sanity_examples,
            "square_queries": profile.square_queries,
            "corruption_severities": list(profile.corruption_severities),
            "seed": context.seed,
        }

    def run(self, context: AuditContext) -> SectionResult:
        if context.model.differentiable:
            return self._white_box(context)
        return self._black_box(context)

    # -- natural corruptions -------------------------------------------------------------------

    def _corruptions(
        self, context: AuditContext, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[dict[str, Any] | None, Table | None, str]:
        """Accuracy under the uncertainty pillar's natural corruptions (images in [0, 1])."""
        missing = pillar_missing("trustlab.uncertainty", "corruption_accuracy")
        if missing:
            return None, None, f"Corruption accuracy is left out: {missing}"
        if not context.data.is_image or context.data.bounds != (0.0, 1.0):
            return None, None, "Corruption accuracy is left out: it needs images in [0, 1]."
        from trustlab.uncertainty import corruption_accuracy

        severities = context.profile.corruption_severities
        report = corruption_accuracy(
            model=context.model.module,
            x=x,
            y=y,
            severities=severities,
            seed=context.seed,
            batch_size=context.batch_size,
        )
        rows: list[list[Cell]] = [
            [name, *[per[level] for level in severities]] for name, per in report.accuracy.items()
        ]
        table = Table(
            "Accuracy under natural corruptions (Hendrycks and Dietterich 2019)",
            ["corruption", *[f"severity {level}" for level in severities]],
            rows,
        )
        note = (
            f"Natural corruptions: mean accuracy {report.mean_accuracy:.3f} over "
            f"{len(report.accuracy)} corruptions at severities "
            f"{', '.join(map(str, severities))} (clean {report.clean_accuracy:.3f})."
        )
        return {**report.to_json()}, table, note

    # -- models with gradients -----------------------------------------------------------------

    def _white_box(self, context: AuditContext) -> SectionResult:
        from trustlab.robustness import PGD, AutoAttack, run_sanity_checks

        profile = context.profile
        settings = self.settings(context)
        index = context.subsample(profile.n_attack, salt=1)
        x = torch.from_numpy(context.data.x[index])
        y = torch.from_numpy(context.data.y[index])
        bounds = context.data.bounds
        eps = context.eps
        model = context.model.module
        factors = sorted(set(profile.eps_factors) | {1.0})
        steps_total = len(factors) + 2
        done = 0

        curve: dict[float, float] = {}
        results: dict[float, Any] = {}
        for factor in factors:
            attack = PGD(
                norm=NORM,
                eps=factor * eps,
                steps=profile.pgd_steps,
                early_stop=True,
                bounds=bounds,
                seed=context.seed,
            )
            result = attack.generate(model=model, x=x, y=y, batch_size=context.batch_size)
            results[factor] = result
            curve[factor * eps] = result.robust_accuracy
            done += 1
            context.progress(done, steps_total)
        pgd = results[1.0]
        evaluation: dict[str, Any] = {
            "attack": f"PGD ({profile.pgd_steps} steps, evaluation mode)",
            "clean_accuracy": pgd.clean_accuracy,
            "robust_accuracy": pgd.robust_accuracy,
        }
        white_box: dict[str, Any] = {"pgd": pgd}
        stages: list[list[Cell]] = []
        if profile.attack == "autoattack":
            state = None
            if context.work_dir is not None:
                context.work_dir.mkdir(parents=True, exist_ok=True)
                state = context.work_dir / "autoattack-state.npz"

            seen: list[str] = []

            def stage_progress(event: ProgressEvent) -> None:
                if event.stage not in seen:
                    seen.append(event.stage)
                share = (len(seen) - 1 + (event.fraction or 0.0)) / N_CASCADE_STAGES
                context.progress(done + min(share, 1.0), steps_total)

            if context.n_classes >= MIN_TARGETED_CLASSES:
                autoattack = AutoAttack(
                    norm=NORM,
                    eps=eps,
                    version="standard",
                    bounds=bounds,
                    seed=context.seed,
                    sanity=None,
                )
                label = "AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square)"
            else:
                names = ["apgd-ce", *(["square"] if context.data.is_image else [])]
                autoattack = AutoAttack(
                    norm=NORM,
                    eps=eps,
                    version="custom",
                    attacks=names,
                    bounds=bounds,
                    seed=context.seed,
                    sanity=None,
                )
                label = f"AutoAttack (custom: {', '.join(names)}; the targeted attacks need "
                label += f"{MIN_TARGETED_CLASSES} classes or more)"
            cascade = autoattack.generate(
                model=model,
                x=x,
                y=y,
                batch_size=context.batch_size,
                state_path=state,
                progress=stage_progress,
            )
            white_box["autoattack"] = cascade
            evaluation = {
                "attack": label,
                "clean_accuracy": cascade.clean_accuracy,
                "robust_accuracy": min(cascade.robust_accuracy, pgd.robust_accuracy),
                "autoattack_robust_accuracy": cascade.robust_accuracy,
                "pgd_robust_accuracy": pgd.robust_accuracy,
                "stages": [vars(stage).copy() for stage in cascade.stages],
            }
            stages = [
                [stage.name, stage.attacked, stage.broken, stage.robust_accuracy]
                for stage in cascade.stages
            ]
        done += 1
        context.progress(done, steps_total)
        sanity = run_sanity_checks(
            model=model,
            x=x,
            y=y,
            norm=NORM,
            eps=eps,
            attack_results=white_box,
            bounds=bounds,
            seed=context.seed,
            n_examples=min(profile.sanity_examples, len(index)),
            pgd_steps=profile.pgd_steps,
            square_queries=profile.square_queries if context.data.is_image else 0,
            batch_size=context.batch_size,
        )
        corruptions, corruption_table, corruption_note = self._corruptions(context, x, y)
        context.progress(steps_total, steps_total)
        tables = [
            Table(
                "Sanity checks (Carlini et al. 2019; Athalye et al. 2018)",
                ["check", "passed", "value", "what it means"],
                [[flag.name, flag.passed, flag.value, flag.explanation] for flag in sanity.flags],
            ),
            Table(
                "Robust accuracy against eps (PGD)",
                ["eps", "robust accuracy"],
                [[e, acc] for e, acc in sorted(curve.items())],
            ),
        ]
        if corruption_table is not None:
            tables.append(corruption_table)
        if stages:
            tables.append(
                Table(
                    "AutoAttack stages", ["attack", "attacked", "broken", "robust accuracy"], stages
                )
            )
        figure = curve_figure(
            "Robust accuracy against eps",
            f"PGD robust accuracy at each Linf eps; the dashed line marks the stated eps "
            f"{eps:.4g}.",
            {"PGD": (list(sorted(curve)), [curve[e] for e in sorted(curve)])},
            xlabel="eps (Linf)",
            ylabel="robust accuracy",
            marker_x=eps,
        )
        sanity_summary = sanity.summary()
        return self.result(
            metrics={
                "norm": NORM,
                "eps": eps,
                "n_examples": len(index),
                **evaluation,
                "curve": [{"eps": e, "robust_accuracy": acc} for e, acc in sorted(curve.items())],
                "sanity_passed": sanity.passed,
                "sanity_failed": [flag.name for flag in sanity.flags if not flag.passed],
                "sanity": sanity_summary,
                "corruptions": corruptions,
            },
            tables=tables,
            figures=[figure] if figure is not None else [],
            notes=[
                f"Threat model: Linf, eps {eps:.4g}, inputs in [{bounds[0]:g}, {bounds[1]:g}], "
                f"on a seeded subsample of {len(index)} examples.",
                "Robust accuracy is an upper bound: a stronger attack may do better. A failed "
                "sanity check means the number should not be trusted.",
                corruption_note,
            ],
            options=settings,
        )

    # -- models without gradients --------------------------------------------------------------

    def _black_box(self, context: AuditContext) -> SectionResult:
        from trustlab.robustness import Square

        profile = context.profile
        index = context.subsample(profile.n_attack, salt=1)
        x = torch.from_numpy(context.data.x[index])
        y = torch.from_numpy(context.data.y[index])
        queries = max(profile.square_queries, 1) * 5
        result = Square(
            norm=NORM,
            eps=context.eps,
            n_queries=queries,
            bounds=context.data.bounds,
            seed=context.seed,
        ).generate(
            model=context.model.module,
            x=x,
            y=y,
            batch_size=context.batch_size,
            progress=lambda event: context.progress(event.fraction or 0.0, 1.0),
        )
        corruptions, corruption_table, corruption_note = self._corruptions(context, x, y)
        return self.result(
            metrics={
                "norm": NORM,
                "eps": context.eps,
                "n_examples": len(index),
                "corruptions": corruptions,
                "attack": f"Square ({queries} queries, black box)",
                "clean_accuracy": result.clean_accuracy,
                "robust_accuracy": result.robust_accuracy,
                "sanity_passed": None,
                "sanity_failed": [],
            },
            notes=[
                "The model has no gradients here (ONNX), so only the black-box Square attack "
                "ran and the gradient sanity checks were skipped; white-box attacks on the "
                "original model would likely find more adversarial examples.",
                corruption_note,
            ],
            tables=[corruption_table] if corruption_table is not None else [],
            options=self.settings(context),
        )

    def summarise(self, result: SectionResult, thresholds: Mapping[str, Threshold]) -> SummaryLine:
        threshold = thresholds["robustness.robust_accuracy"]
        metrics = result.metrics
        value = float(metrics["robust_accuracy"])
        light = threshold.light(value)
        failed = metrics.get("sanity_failed") or []
        if failed and light == "green":
            light = "amber"
        sanity = (
            "sanity checks skipped"
            if metrics.get("sanity_passed") is None
            else "sanity checks passed"
            if not failed
            else f"sanity checks failed: {', '.join(failed)}"
        )
        return SummaryLine(
            section=self.name,
            title=self.title,
            light=light,
            headline=(
                f"robust accuracy {value:.3f} under {metrics['attack']} at Linf eps "
                f"{metrics['eps']:.4g} (clean {metrics['clean_accuracy']:.3f}); {sanity}"
            ),
            metric=threshold.name,
            value=value,
            rule=threshold.rule() + "; amber at best when a sanity check fails",
        )

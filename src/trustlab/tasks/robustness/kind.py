"""The ``robustness`` kind: build a task, check a submitted model, attack it and score it.

See :mod:`trustlab.tasks.robustness` for the artefacts and the scoring rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trustlab.core.data import save_npz
from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.core.training import fit_classifier, predict_logits
from trustlab.core.weights import save_model
from trustlab.robustness import AutoAttack, SanityReport, run_sanity_checks
from trustlab.tasks._scoring import bootstrap_interval, mean, score_parts
from trustlab.tasks._training import load_own_model, load_task_data, seeded_single_thread
from trustlab.tasks.base import FormField, ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.model_submission import (
    check_architectures,
    load_submitted_model,
    model_name_field,
)
from trustlab.tasks.registry import register_kind
from trustlab.tasks.robustness.params import (
    RobustnessParams,
    attack_problems,
    default_architectures,
    make_cascade,
)
from trustlab.tasks.robustness.readme import readme_text
from trustlab.tasks.spec import TaskSpec, parse_params, scoring_device

MSG_FLOOR = (
    "Clean accuracy {accuracy:.4f} on the hidden evaluation set is below this task's floor of "
    "{floor:.4f}; a model must classify clean inputs well before its robustness is scored. "
    "Train it longer or weaken the adversarial training."
)
MSG_OUTPUT = (
    "Your model returns {what} on inputs of shape {input_shape}; it must return finite logits "
    "of shape (batch, {n_classes})."
)
MSG_NOT_IMAGES = (
    "params: the robustness kind needs an image data set with pixel values in [0, 1]; "
    "{dataset} is not one."
)
MSG_TOO_SMALL = (
    "params: {dataset} has {available} examples, but n_eval={n_eval} leaves "
    "fewer than {minimum} to train on; lower n_eval."
)
#: Examples fed to the model during validation.
VALIDATION_ROWS = 4
MIN_TRAIN = 50


@register_kind
class Robustness(TaskKind):
    """Adversarial robustness of a submitted model: clean accuracy mixed with robust accuracy."""

    name = "robustness"
    params_model = RobustnessParams
    higher_is_better = True
    submission_format = (
        "Model weights (safetensors, or a .pt state dict) for one of the task's architectures, "
        "named in the 'model_name' form field."
    )
    form_fields = (model_name_field(default_architectures()),)

    def _params(self, spec: TaskSpec) -> RobustnessParams:
        return parse_params(spec, self.params_model, as_type=RobustnessParams)

    def metric_names(self, spec: TaskSpec) -> list[str]:
        return ["score", "clean_accuracy", "robust_accuracy"]

    def form_fields_for(self, spec: TaskSpec) -> tuple[FormField, ...]:
        return (model_name_field(self._params(spec).architectures),)

    def rules_text(self, spec: TaskSpec) -> str:
        params = self._params(spec)
        attacks = ", then ".join(entry.name for entry in params.attacks)
        return (
            f"Threat model: {params.norm} perturbations of size at most {params.eps:g}, inputs "
            f"in [0, 1]. A model with clean accuracy under {params.clean_floor:g} fails. "
            f"Score = {params.weights.clean:g} x clean accuracy + {params.weights.robust:g} x "
            f"robust accuracy, where an example is robust if it is classified correctly and "
            f"every attack fails on it ({attacks})."
        )

    def check_spec(self, spec: TaskSpec) -> list[str]:
        problems = super().check_spec(spec)
        params = self._params(spec)
        problems += check_architectures(params.architectures, field="params.architectures")
        problems += attack_problems(params, seed=spec.seed)
        return problems

    # ----------------------------------------------------------------------------------------

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        data = load_task_data(spec.dataset, data_file=params.data_file)
        x, y = data.x, data.y
        if x.ndim < 3 or float(x.min()) < 0.0 or float(x.max()) > 1.0:
            raise ConfigurationError(MSG_NOT_IMAGES.format(dataset=data.source))
        if len(x) - params.n_eval < MIN_TRAIN:
            raise ConfigurationError(
                MSG_TOO_SMALL.format(
                    dataset=data.source, available=len(x), n_eval=params.n_eval, minimum=MIN_TRAIN
                )
            )
        rng = np.random.default_rng(spec.seed)
        order = rng.permutation(len(x))
        hidden = np.sort(order[: params.n_eval])
        train = np.sort(order[params.n_eval :])
        public = np.zeros(len(hidden), dtype=bool)
        public[rng.permutation(len(hidden))[: round(len(hidden) * spec.public_fraction)]] = True

        choice = params.architectures[0]
        if params.model_file is not None:
            progress(f"using the baseline {params.model_file} and {data.source}")
            accepted = [c.registry_name for c in params.architectures]
            model = load_own_model(params.model_file, accepted=accepted)
            logits = predict_logits(model, x[hidden])
        else:
            progress(f"training the baseline ({choice.name}) on {len(train)} examples")
            with seeded_single_thread(spec.seed):
                model = choice.build()
                fit_classifier(
                    model,
                    x[train],
                    y[train],
                    epochs=params.baseline_epochs,
                    lr=params.baseline_lr,
                    seed=spec.seed,
                )
                logits = predict_logits(model, x[hidden])
        baseline_acc = float((logits.argmax(dim=1).numpy() == y[hidden]).mean())
        progress(f"baseline clean accuracy on the hidden set: {baseline_acc:.3f}")

        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        save_npz(paths.public / "train.npz", x=x[train], y=y[train])
        save_model(
            model,
            paths.public / "sample_submission.safetensors",
            metadata={"trustlab.task": spec.id},
        )
        save_npz(paths.hidden / "eval.npz", x=x[hidden], y=y[hidden], public=public)
        (paths.public / "README.md").write_text(
            readme_text(
                spec,
                params,
                input_shape=tuple(x.shape[1:]),
                n_train=len(train),
                n_classes=int(y.max()) + 1,
                baseline_acc=baseline_acc,
            )
        )

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        params = self._params(spec)
        model = load_submitted_model(params.architectures, file=file, fields=fields)
        x, y, _ = _load_eval(paths)
        _check_outputs(model, x[:VALIDATION_ROWS], n_classes=int(y.max()) + 1)
        n_parameters = sum(int(p.numel()) for p in model.parameters())
        return {"model_name": fields.get("model_name", ""), "parameters": n_parameters}

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        import torch

        params = self._params(spec)
        model = load_submitted_model(params.architectures, file=file, fields=fields)
        x_np, y_np, public = _load_eval(paths)
        n_classes = int(y_np.max()) + 1
        _check_outputs(model, x_np[:VALIDATION_ROWS], n_classes=n_classes)
        # The worker's device (TRUSTLAB_DEVICE) or the spec's: attacks run where the model is.
        device = torch.device(scoring_device(spec))
        model.to(device)
        x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
        logits = predict_logits(model, x, batch_size=params.batch_size)
        clean_correct = (logits.argmax(dim=1).cpu() == y.cpu()).numpy()
        accuracy = float(clean_correct.mean())
        if accuracy < params.clean_floor:
            raise SubmissionError(MSG_FLOOR.format(accuracy=accuracy, floor=params.clean_floor))

        evaluation = AutoAttack(
            norm=params.norm,
            eps=params.eps,
            version="custom",
            attacks=make_cascade(params, seed=spec.seed),
            seed=spec.seed,
        ).generate(model=model, x=x, y=y, batch_size=params.batch_size)
        report = None
        if params.sanity_checks:
            report = run_sanity_checks(
                model=model,
                x=x,
                y=y,
                norm=params.norm,
                eps=params.eps,
                seed=spec.seed,
                batch_size=params.batch_size,
            )
        robust = evaluation.robust.cpu().numpy()
        broken_by = evaluation.broken_by.cpu().numpy()

        def part_metrics(mask: np.ndarray) -> dict[str, Any]:
            metrics = _part_metrics(
                params=params,
                clean_correct=clean_correct[mask],
                robust=robust[mask],
                broken_by=broken_by[mask],
                names=list(evaluation.attacks),
                seed=spec.seed,
            )
            metrics.update(
                forwards=evaluation.forwards,
                backwards=evaluation.backwards,
                sanity_flags=[] if report is None else report.failed,
            )
            return metrics

        return score_parts(public, part_metrics, primary="score", notes=_notes(report))


# --------------------------------------------------------------------------------------------
# The evaluation


def _part_metrics(
    *,
    params: RobustnessParams,
    clean_correct: np.ndarray,
    robust: np.ndarray,
    broken_by: np.ndarray,
    names: list[str],
    seed: int,
) -> dict[str, Any]:
    clean = float(clean_correct.mean())
    robust_acc = float(robust.mean())
    result: dict[str, Any] = {
        "score": params.weights.clean * clean + params.weights.robust * robust_acc,
        "clean_accuracy": clean,
        "robust_accuracy": robust_acc,
        "n_examples": len(clean_correct),
    }
    for index, name in enumerate(names):
        result[f"broken_by_{name}"] = float(np.mean(broken_by == index))
    if params.bootstrap_resamples > 0:
        for name, values in (("clean_accuracy", clean_correct), ("robust_accuracy", robust)):
            result[f"{name}_ci95"] = bootstrap_interval(
                mean,
                arrays={"values": values.astype(np.float64)},
                resamples=params.bootstrap_resamples,
                seed=seed,
            )
    return result


def _notes(report: SanityReport | None) -> list[str]:
    """The sanity checks' outcome in words, shown with the submission's result."""
    if report is None:
        return ["Sanity checks are switched off for this task."]
    notes = [
        f"Sanity check '{flag.name}' raised a flag: {flag.explanation}"
        for flag in report.flags
        if not flag.passed
    ]
    if not notes:
        notes.append(
            f"Sanity checks passed ({', '.join(flag.name for flag in report.flags)}; "
            f"{report.n_examples} examples)."
        )
    return notes


def _check_outputs(model: Any, x: np.ndarray, *, n_classes: int) -> None:
    import torch

    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x))
    except Exception as exc:  # a model that cannot run on the task's inputs
        raise SubmissionError(
            MSG_OUTPUT.format(
                what=f"an error ({type(exc).__name__})",
                input_shape=tuple(x.shape),
                n_classes=n_classes,
            )
        ) from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(x), n_classes):
        what = f"shape {tuple(getattr(out, 'shape', ()))}"
        raise SubmissionError(
            MSG_OUTPUT.format(what=what, input_shape=tuple(x.shape), n_classes=n_classes)
        )
    if not bool(torch.isfinite(out).all()):
        raise SubmissionError(
            MSG_OUTPUT.format(
                what="NaN or infinite values", input_shape=tuple(x.shape), n_classes=n_classes
            )
        )


def _load_eval(paths: TaskPaths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(paths.hidden / "eval.npz", allow_pickle=False) as data:
        return data["x"], data["y"], data["public"].astype(bool)

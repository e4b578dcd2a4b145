"""The ``membership-defence`` kind: build a task, check a submitted model, attack it, score it.

See :mod:`trustlab.tasks.membership_defence` for the artefacts and the scoring rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trustlab.core.data import save_npz
from trustlab.core.errors import ConfigurationError, SubmissionError, TrustlabError
from trustlab.core.metrics import auc, tpr_at_fpr
from trustlab.core.training import fit_classifier, predict_logits
from trustlab.core.weights import save_model
from trustlab.tasks._scoring import (
    PartMetrics,
    bootstrap_interval,
    mean,
    score_parts,
    stratified_public_mask,
)
from trustlab.tasks._training import (
    epoch_progress,
    load_task_data,
    seeded_single_thread,
    stage_progress,
)
from trustlab.tasks.base import FormField, ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.membership_defence.params import (
    DefenceParams,
    attack_problems,
    default_architectures,
)
from trustlab.tasks.model_submission import (
    check_architectures,
    load_submitted_model,
    model_name_field,
)
from trustlab.tasks.readme import render_readme
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec, parse_params, scoring_device

if TYPE_CHECKING:
    from torch import nn

    from trustlab.privacy import ReferenceModels

MSG_TOO_SMALL = (
    "params: {dataset} has {available} examples, but n_train={n_train} and "
    "n_test={n_test} leave fewer than n_population_min={minimum} population samples; lower "
    "n_train or n_test."
)
MSG_OUTPUT = (
    "Your model cannot be scored: on inputs of shape {input_shape} it {problem}; it must "
    "return finite logits of shape (batch, {n_classes})."
)
#: The folder of the reference models, under the task's hidden folder.
REFERENCE_FOLDER = "reference"
#: How the rule names each attack.
ATTACK_TITLES = {"lira": "LiRA", "rmia": "RMIA"}
#: Examples fed to the model during validation.
VALIDATION_ROWS = 4


@dataclass(frozen=True)
class _Evaluation:
    """What one model did: correct answers on the population and each attack's scores."""

    correct: np.ndarray
    attack_scores: dict[str, np.ndarray]


@register_kind
class MembershipDefence(TaskKind):
    """Train a useful model that leaks little: test accuracy penalised by membership leakage."""

    name = "membership-defence"
    params_model = DefenceParams
    higher_is_better = True
    submission_format = (
        "Model weights (safetensors, or a .pt state dict) for one of the task's architectures, "
        "trained on train.npz, named in the 'model_name' form field."
    )
    form_fields = (model_name_field(default_architectures()),)

    def _params(self, spec: TaskSpec) -> DefenceParams:
        return parse_params(spec, self.params_model, as_type=DefenceParams)

    def metric_names(self, spec: TaskSpec) -> list[str]:
        return ["score", "accuracy", "leakage"]

    def form_fields_for(self, spec: TaskSpec) -> tuple[FormField, ...]:
        return (model_name_field(self._params(spec).architectures),)

    def rules_text(self, spec: TaskSpec) -> str:
        params = self._params(spec)
        attacks = " and ".join(ATTACK_TITLES[entry.name] for entry in params.attacks)
        return (
            f"Leakage = the largest TPR at FPR {params.fpr:g} of {attacks} against your model, "
            f"with {params.reference.n_models} reference models the server trained once on "
            f"the training set and the hidden test set. Score = test accuracy - "
            f"{params.penalty:g} x max(0, leakage - {params.leakage_bound:g})."
        )

    def check_spec(self, spec: TaskSpec) -> list[str]:
        problems = super().check_spec(spec)
        params = self._params(spec)
        problems += check_architectures(params.architectures, field="params.architectures")
        problems += attack_problems(params)
        return problems

    # ----------------------------------------------------------------------------------------

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        from trustlab.privacy import ReferenceModels

        params = self._params(spec)
        data = load_task_data(spec.dataset, data_file=params.data_file)
        x, y = data.x, data.y
        n_population = len(x) - params.n_train - params.n_test
        if n_population < params.n_population_min:
            raise ConfigurationError(
                MSG_TOO_SMALL.format(
                    dataset=data.source,
                    available=len(x),
                    n_train=params.n_train,
                    n_test=params.n_test,
                    minimum=params.n_population_min,
                )
            )
        rng = np.random.default_rng(spec.seed)
        order = rng.permutation(len(x))
        train = np.sort(order[: params.n_train])
        test = np.sort(order[params.n_train : params.n_train + params.n_test])
        samples = np.sort(order[params.n_train + params.n_test :])
        # The candidates of the attacks, and the reference models' population: the training
        # rows (members of a submission) followed by the test rows (non-members).
        candidates = np.concatenate([train, test])
        member = np.concatenate([np.ones(len(train), np.int8), np.zeros(len(test), np.int8)])
        public = stratified_public_mask(member, spec.public_fraction, rng)

        choice = params.architectures[0]
        recipe = params.reference
        progress(
            f"training {recipe.n_models} reference models ({choice.name}) on halves of "
            f"{len(candidates)} examples"
        )
        with seeded_single_thread(spec.seed):
            reference = ReferenceModels.train(
                architecture=choice.registry_name,
                arguments=choice.arguments,
                x=x[candidates],
                y=y[candidates],
                n_models=recipe.n_models,
                epochs=recipe.epochs,
                lr=recipe.lr,
                batch_size=recipe.batch_size,
                weight_decay=recipe.weight_decay,
                seed=spec.seed,
                progress=stage_progress(progress, what="reference training"),
            )
            progress(f"training the sample submission ({choice.name}) on {len(train)} examples")
            model = choice.build()
            fit_classifier(
                model,
                x[train],
                y[train],
                epochs=recipe.epochs,
                lr=recipe.lr,
                batch_size=recipe.batch_size,
                weight_decay=recipe.weight_decay,
                seed=spec.seed,
                progress=epoch_progress(progress, epochs=recipe.epochs),
            )
        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        save_npz(paths.public / "train.npz", x=x[train], y=y[train])
        save_model(
            model,
            paths.public / "sample_submission.safetensors",
            metadata={"trustlab.task": spec.id},
        )
        save_npz(
            paths.hidden / "candidates.npz",
            x=x[candidates],
            y=y[candidates],
            member=member,
            public=public,
        )
        save_npz(paths.hidden / "population.npz", x=x[samples], y=y[samples])
        reference.save(paths.hidden / REFERENCE_FOLDER)

        progress("attacking the sample submission")
        baseline = score_parts(
            public.astype(bool),
            _part_metrics_fn(
                params, _evaluate(params, model, paths=paths, reference=reference), member, spec
            ),
            primary="score",
        )
        (paths.public / "README.md").write_text(
            render_readme(
                self.name,
                context={
                    "spec": spec,
                    "params": params,
                    "input_shape": tuple(x.shape[1:]),
                    "n_classes": int(y.max()) + 1,
                    "n_train": len(train),
                    "baseline": baseline.public_metrics,
                    "rules": self.rules_text(spec),
                },
            )
        )

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        params = self._params(spec)
        model = load_submitted_model(params.architectures, file=file, fields=fields)
        x, y, _, _ = _load_candidates(paths)
        _check_outputs(model, x[:VALIDATION_ROWS], n_classes=int(y.max()) + 1)
        n_parameters = sum(int(p.numel()) for p in model.parameters())
        return {"model_name": fields.get("model_name", ""), "parameters": n_parameters}

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        params = self._params(spec)
        model = load_submitted_model(params.architectures, file=file, fields=fields)
        x, y, member, public = _load_candidates(paths)
        _check_outputs(model, x[:VALIDATION_ROWS], n_classes=int(y.max()) + 1)
        # The worker's device (TRUSTLAB_DEVICE) or the spec's: the submitted model and the
        # reference models answer the attacks' queries there.
        evaluation = _evaluate(
            params, model, paths=paths, reference=None, device=scoring_device(spec)
        )
        return score_parts(
            public, _part_metrics_fn(params, evaluation, member, spec), primary="score"
        )


# --------------------------------------------------------------------------------------------
# The evaluation


def _load_candidates(paths: TaskPaths) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.load(paths.hidden / "candidates.npz", allow_pickle=False) as data:
        return data["x"], data["y"], data["member"].astype(bool), data["public"].astype(bool)


def _evaluate(
    params: DefenceParams,
    model: nn.Module,
    *,
    paths: TaskPaths,
    reference: ReferenceModels | None,
    device: str = "cpu",
) -> _Evaluation:
    """Run the model on every candidate and every attack against it, once, with the model and
    the reference models on ``device``."""
    from trustlab.privacy import RMIA, LiRA, ReferenceModels

    x, y, _, _ = _load_candidates(paths)
    with np.load(paths.hidden / "population.npz", allow_pickle=False) as data:
        population_x, population_y = data["x"], data["y"]
    if reference is None:
        reference = ReferenceModels.load(paths.hidden / REFERENCE_FOLDER, x=x, y=y)
    model.to(device)
    for reference_model in reference.models:
        reference_model.to(device)
    predictions = predict_logits(model, x, batch_size=params.batch_size).argmax(dim=1).numpy()
    attack_scores: dict[str, np.ndarray] = {}
    index = np.arange(len(x))
    for entry in params.attacks:
        options: dict[str, Any] = {"batch_size": params.batch_size, **entry.options}
        attack: LiRA | RMIA
        if entry.name == "lira":
            attack = LiRA(reference=reference, **options)
        else:
            attack = RMIA(
                reference=reference, population_x=population_x, population_y=population_y, **options
            )
        attack_scores[entry.name] = attack.infer(model=model, x=x, y=y, candidate_index=index)
    return _Evaluation(correct=predictions == y, attack_scores=attack_scores)


def _part_metrics_fn(
    params: DefenceParams, evaluation: _Evaluation, member: np.ndarray, spec: TaskSpec
) -> PartMetrics:
    """The metrics of one part: accuracy on its test rows, each attack's TPR and AUC on all
    its rows, the leakage (the largest TPR) and the score."""
    member = member.astype(bool)

    def part_metrics(mask: np.ndarray) -> dict[str, Any]:
        test = mask & ~member
        correct = evaluation.correct[test].astype(np.float64)
        accuracy = float(correct.mean())
        y_true = member[mask].astype(np.int64)
        per_attack: dict[str, float] = {}
        leakage = 0.0
        for name, scores in evaluation.attack_scores.items():
            tpr = float(tpr_at_fpr(y_true=y_true, scores=scores[mask], fpr=params.fpr))
            per_attack[f"{name}_tpr@{params.fpr:g}"] = tpr
            per_attack[f"{name}_auc"] = float(auc(y_true=y_true, scores=scores[mask]))
            leakage = max(leakage, tpr)
        result: dict[str, Any] = {
            "score": accuracy - params.penalty * max(0.0, leakage - params.leakage_bound),
            "accuracy": accuracy,
            "leakage": leakage,
            **per_attack,
            "n_members": int(y_true.sum()),
            "n_non_members": int(len(y_true) - y_true.sum()),
        }
        if params.bootstrap_resamples > 0:
            result["accuracy_ci95"] = bootstrap_interval(
                mean,
                arrays={"values": correct},
                resamples=params.bootstrap_resamples,
                seed=spec.seed,
            )
        return result

    return part_metrics


def _check_outputs(model: nn.Module, x: np.ndarray, *, n_classes: int) -> None:
    """Refuse a model that does not map the task's inputs to finite logits of the right width."""
    import torch

    from trustlab.core.checks import compute_logits

    try:
        logits = compute_logits(model=model, x=torch.from_numpy(x), batch_size=len(x))
    except TrustlabError as exc:
        problem = f"fails the output check ({exc})"
    except Exception as exc:  # a model that cannot run on the task's inputs
        problem = f"raises {type(exc).__name__}"
    else:
        if logits.shape[1] == n_classes:
            return
        problem = f"returns shape {tuple(logits.shape)}"
    raise SubmissionError(
        MSG_OUTPUT.format(input_shape=tuple(x.shape), problem=problem, n_classes=n_classes)
    )

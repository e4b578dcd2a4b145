"""The ``fairness`` kind: build a task on Adult, COMPAS or German Credit; check and score a
submitted classifier.

See :mod:`trustlab.tasks.fairness` for the setting, the artefacts and the scoring rule.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import model_device_and_dtype
from trustlab.core.data import TabularDataset, load_dataset, save_npz
from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.core.training import fit_classifier
from trustlab.core.weights import save_model
from trustlab.tasks._scoring import score_parts, stratified_public_mask
from trustlab.tasks._training import epoch_progress, seeded_single_thread
from trustlab.tasks.base import FormField, ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.fairness.metrics import group_codes, group_names, part_metrics
from trustlab.tasks.fairness.params import (
    DATASET_ATTRIBUTES,
    FairnessParams,
)
from trustlab.tasks.fairness.readme import readme_text
from trustlab.tasks.model_submission import (
    MODEL_NAME_FIELD,
    check_architectures,
    load_submitted_model,
    model_name_field,
)
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec, parse_params

#: Rows of the training split checked by a forward pass at intake.
VALIDATION_ROWS = 16
#: Rows per forward pass when scoring.
BATCH_SIZE = 1024

MSG_DATASET = (
    "field 'dataset': the fairness kind is built on one of adult, compas, german; got {got!r}"
)
MSG_ATTRIBUTE = (
    "field 'params.sensitive': the {dataset} data have the sensitive attributes {allowed}; "
    "got {got!r}"
)
MSG_LOWER_IS_BETTER = (
    "field 'metric': {metric!r} is lower-is-better but leaderboards of this kind rank higher "
    "scores first; use 'score' or 'accuracy'"
)
MSG_BAD_SHAPE_SPEC = (
    "field 'params.architectures': architecture {name!r} must map {dataset} rows of shape "
    "(n, {d}) to logits of shape (n, 2); {problem}"
)
MSG_BASELINE = (
    "field 'params.baseline.architecture': {name!r} is not one of the task's architectures "
    "({names})"
)
MSG_TOO_MANY_ROWS = (
    "params: {field} is {got}, but the {split} split has only {available} rows; "
    "lower {field} or leave it out to use every row."
)
MSG_FEW_GROUPS = (
    "params: the {part} part of the hidden rows has {count} group(s) with at least "
    "min_group_size={min_size} rows, but a parity gap needs two; raise n_test or lower "
    "min_group_size."
)
MSG_OUTPUT_TYPE = (
    "Your model must return a tensor of logits of shape (n, 2) for n rows of the task; it "
    "returned a {what}."
)
MSG_OUTPUT_SHAPE = (
    "Your model must return logits of shape (n, 2) for n rows of the task (column 1 = label 1); "
    "for {n} rows it returned shape {shape}."
)
MSG_OUTPUT_NON_FINITE = (
    "Your model returned NaN or infinite logits for {count} of {n} rows (first: row {index}); "
    "every logit must be a finite number."
)
MSG_FORWARD_FAILED = "Your model failed on rows of the task of shape (n, {d}): {error}"


@register_kind
class Fairness(TaskKind):
    """Accuracy on a tabular task, traded against a demographic-parity or equalized-odds gap."""

    name = "fairness"
    params_model = FairnessParams
    higher_is_better = True
    submission_format = (
        "Model weights (safetensors, or a .pt state dict) of one of the task's architectures, "
        "named in the form field 'model_name'; the model maps encoded rows (n, D) to "
        "logits (n, 2), column 1 meaning label 1."
    )
    form_fields = (model_name_field(()),)

    def _params(self, spec: TaskSpec) -> FairnessParams:
        params = parse_params(spec, self.params_model, as_type=FairnessParams)
        if spec.dataset not in DATASET_ATTRIBUTES or not _attributes_known(spec, params):
            return params  # check_spec reports it
        return params.with_features(
            _feature_count(
                str(spec.dataset), tuple(params.attributes), params.include_sensitive_in_features
            )
        )

    def metric_names(self, spec: TaskSpec) -> list[str]:
        return ["score", "accuracy", "dp_gap", "eo_gap"]

    def form_fields_for(self, spec: TaskSpec) -> tuple[FormField, ...]:
        return (model_name_field(self._params(spec).architectures),)

    def rules_text(self, spec: TaskSpec) -> str:
        params = self._params(spec)
        groups = " x ".join(params.attributes)
        rule = params.penalty.describe(bound=params.gap_bound, criterion=params.criterion)
        if params.criterion == "equalized_odds":
            gap = (
                "The equalized-odds gap is the larger of the spreads (largest minus smallest) "
                "of the true-positive and of the false-positive rates"
            )
        else:
            gap = (
                "The demographic-parity gap is the largest minus the smallest rate of "
                "predicting label 1"
            )
        text = (
            f"Scoring: {rule}, on the public and the private part of the hidden rows alike. "
            f"{gap} across the {groups} groups of the hidden rows (groups with fewer than "
            f"{params.min_group_size} rows in a part are left out)."
        )
        if spec.metric == "accuracy":
            text += " The leaderboard of this task ranks by accuracy alone; the score is shown."
        return text

    def check_spec(self, spec: TaskSpec) -> list[str]:
        problems = super().check_spec(spec)
        if spec.metric in ("dp_gap", "eo_gap"):
            problems.append(MSG_LOWER_IS_BETTER.format(metric=spec.metric))
        if spec.dataset not in DATASET_ATTRIBUTES:
            problems.append(MSG_DATASET.format(got=spec.dataset))
            return problems
        params = self._params(spec)
        if not _attributes_known(spec, params):
            allowed = ", ".join(DATASET_ATTRIBUTES[spec.dataset])
            for name in params.attributes:
                if name not in DATASET_ATTRIBUTES[spec.dataset]:
                    problems.append(
                        MSG_ATTRIBUTE.format(dataset=spec.dataset, allowed=allowed, got=name)
                    )
            return problems
        names = [c.name for c in params.architectures]
        if params.baseline.architecture is not None and params.baseline.architecture not in names:
            problems.append(
                MSG_BASELINE.format(
                    name=params.baseline.architecture, names=", ".join(map(repr, names))
                )
            )
        arch_problems = check_architectures(params.architectures, field="params.architectures")
        problems.extend(arch_problems)
        if not arch_problems:
            d = _feature_count(
                str(spec.dataset), tuple(params.attributes), params.include_sensitive_in_features
            )
            for choice in params.architectures:
                problem = _shape_problem(choice.build(), n_features=d)
                if problem:
                    problems.append(
                        MSG_BAD_SHAPE_SPEC.format(
                            name=choice.name, dataset=spec.dataset, d=d, problem=problem
                        )
                    )
        return problems

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        train = _load(str(spec.dataset), "train", params)
        test = _load(str(spec.dataset), "test", params)
        rng = np.random.default_rng(spec.seed)
        train_rows = _subsample(len(train), params.n_train, rng, field="n_train", split="train")
        test_rows = _subsample(len(test), params.n_test, rng, field="n_test", split="test")
        labels = {name: list(train.sensitive_labels[name]) for name in params.attributes}
        names = group_names(labels)

        x_test, y_test = test.x[test_rows], test.y[test_rows]
        codes_test = {name: test.sensitive[name][test_rows] for name in params.attributes}
        group_test = group_codes(codes_test, labels)
        public = stratified_public_mask(group_test * 2 + y_test, spec.public_fraction, rng)
        for part, mask in (("public", public), ("private", ~public)):
            _, counts = np.unique(group_test[mask], return_counts=True)
            scored = int(np.sum(counts >= params.min_group_size))
            if scored < 2:
                raise ConfigurationError(
                    MSG_FEW_GROUPS.format(part=part, count=scored, min_size=params.min_group_size)
                )

        x_train, y_train = train.x[train_rows], train.y[train_rows]
        codes_train = {name: train.sensitive[name][train_rows] for name in params.attributes}
        choice = params.baseline_choice()
        recipe = params.baseline
        progress(f"training the baseline ({choice.name}) on {len(train_rows)} rows")
        with seeded_single_thread(spec.seed):
            model = choice.build()
            fit_classifier(
                model,
                x_train,
                y_train,
                epochs=recipe.epochs,
                lr=recipe.lr,
                batch_size=recipe.batch_size,
                weight_decay=recipe.weight_decay,
                seed=spec.seed,
                progress=epoch_progress(progress, epochs=recipe.epochs),
            )
            predicted = _predict(model, x_train)
        group_train = group_codes(codes_train, labels)
        _, train_sizes = np.unique(group_train, return_counts=True)
        enough = int(np.sum(train_sizes >= params.min_group_size)) >= 2
        baseline = part_metrics(
            y_true=y_train,
            y_pred=predicted,
            group=group_train,
            names=names,
            gap_bound=params.gap_bound,
            penalty=params.penalty,
            min_group_size=params.min_group_size if enough else 1,
            resamples=0,
            seed=spec.seed,
            criterion=params.criterion,
        )
        progress(
            f"baseline on the training rows: accuracy {baseline['accuracy']:.3f}, "
            f"{params.gap_metric} {baseline[params.gap_metric]:.3f}"
        )

        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        save_npz(paths.public / "train.npz", x=x_train, y=y_train, **codes_train)
        encoding = {
            "feature_names": list(train.feature_names),
            "label_names": list(train.label_names),
            "sensitive": labels,
            "groups": names,
        }
        (paths.public / "encoding.json").write_text(
            json.dumps(encoding, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        save_model(
            model,
            paths.public / "sample_submission.safetensors",
            metadata={"trustlab.task": spec.id, "trustlab.model_name": choice.name},
        )
        save_npz(paths.hidden / "test.npz", x=x_test, y=y_test, public=public, **codes_test)
        (paths.public / "README.md").write_text(
            readme_text(
                spec,
                params,
                rules=self.rules_text(spec),
                n_train=len(train_rows),
                feature_names=list(train.feature_names),
                label_names=list(train.label_names),
                labels=labels,
                baseline_name=choice.name,
                baseline=baseline,
            ),
            encoding="utf-8",
        )

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        params = self._params(spec)
        model = load_submitted_model(params.architectures, file=file, fields=fields)
        with np.load(paths.public / "train.npz", allow_pickle=False) as data:
            x = np.asarray(data["x"][:VALIDATION_ROWS])
        _predict(model, x)
        return {
            "model_name": fields[MODEL_NAME_FIELD].strip(),
            "parameters": int(sum(p.numel() for p in model.parameters())),
        }

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        params = self._params(spec)
        model = load_submitted_model(params.architectures, file=file, fields=fields)
        with np.load(paths.hidden / "test.npz", allow_pickle=False) as data:
            x, y, public = data["x"], data["y"], data["public"]
            codes = {name: data[name] for name in params.attributes}
        encoding = json.loads((paths.public / "encoding.json").read_text(encoding="utf-8"))
        labels = {name: list(encoding["sensitive"][name]) for name in params.attributes}
        group = group_codes(codes, labels)
        names = group_names(labels)
        predicted = _predict(model, x)
        return score_parts(
            public,
            lambda mask: part_metrics(
                y_true=y[mask],
                y_pred=predicted[mask],
                group=group[mask],
                names=names,
                gap_bound=params.gap_bound,
                penalty=params.penalty,
                min_group_size=params.min_group_size,
                resamples=params.bootstrap_resamples,
                seed=spec.seed,
                criterion=params.criterion,
            ),
            primary=spec.metric or "score",
        )


# --------------------------------------------------------------------------------------------
# Helpers


def _load(dataset: str, split: str, params: FairnessParams) -> TabularDataset:
    data = load_dataset(
        dataset,
        split=split,
        sensitive=tuple(params.attributes),
        include_sensitive_in_features=params.include_sensitive_in_features,
    )
    assert isinstance(data, TabularDataset)
    return data


def _attributes_known(spec: TaskSpec, params: FairnessParams) -> bool:
    allowed = DATASET_ATTRIBUTES.get(str(spec.dataset), ())
    return all(name in allowed for name in params.attributes)


@functools.cache
def _feature_count(dataset: str, attributes: tuple[str, ...], include: bool) -> int:
    """Columns of the data set's ``x`` for these loader options (89 for Adult by default)."""
    data = load_dataset(
        dataset, split="test", sensitive=attributes, include_sensitive_in_features=include
    )
    assert isinstance(data, TabularDataset)
    return int(data.x.shape[1])


def _subsample(
    n: int, wanted: int | None, rng: np.random.Generator, *, field: str, split: str
) -> np.ndarray:
    """Sorted row indices: every row, or ``wanted`` of them drawn without replacement."""
    if wanted is None:
        return np.arange(n, dtype=np.int64)
    if wanted > n:
        raise ConfigurationError(
            MSG_TOO_MANY_ROWS.format(field=field, got=wanted, split=split, available=n)
        )
    return np.sort(rng.choice(n, size=wanted, replace=False)).astype(np.int64)


def _shape_problem(model: nn.Module, *, n_features: int) -> str:
    """Why ``model`` does not map (2, n_features) rows to (2, 2) logits; empty if it does."""
    try:
        with torch.no_grad():
            output = model.eval()(torch.zeros(2, n_features))
    except (RuntimeError, ValueError, TypeError) as exc:
        return f"a forward pass fails ({str(exc)[:160]})"
    if not isinstance(output, torch.Tensor):
        return f"it returns a {type(output).__name__}"
    if tuple(output.shape) != (2, 2):
        return f"it returns shape {tuple(output.shape)} for 2 rows"
    return ""


def _predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Predicted labels (arg-max of the logits, ties to 0) of a submitted model.

    Raises
    ------
    SubmissionError
        If the model fails on the rows, or its output is not finite logits of shape (n, 2).
    """
    device, dtype = model_device_and_dtype(model)
    model.eval()
    n = len(x)
    predictions = []
    with torch.no_grad():
        for start in range(0, n, BATCH_SIZE):
            batch = torch.from_numpy(np.ascontiguousarray(x[start : start + BATCH_SIZE]))
            try:
                output = model(batch.to(device=device, dtype=dtype))
            except (RuntimeError, ValueError, TypeError) as exc:
                raise SubmissionError(
                    MSG_FORWARD_FAILED.format(d=x.shape[1], error=str(exc)[:200])
                ) from None
            if not isinstance(output, torch.Tensor):
                raise SubmissionError(MSG_OUTPUT_TYPE.format(what=type(output).__name__))
            if output.dim() != 2 or tuple(output.shape) != (len(batch), 2):
                raise SubmissionError(
                    MSG_OUTPUT_SHAPE.format(n=len(batch), shape=tuple(output.shape))
                )
            finite = torch.isfinite(output).all(dim=1).cpu()
            if not bool(finite.all()):
                bad = np.flatnonzero(~finite.numpy())
                raise SubmissionError(
                    MSG_OUTPUT_NON_FINITE.format(
                        count=len(bad), n=len(batch), index=start + int(bad[0])
                    )
                )
            predictions.append(output.argmax(dim=1).cpu().numpy())
    return np.concatenate(predictions).astype(np.int64)

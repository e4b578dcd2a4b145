"""The ``conformal`` kind: build a task, check and score a file of prediction sets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trustlab.core.data import save_npz
from trustlab.core.errors import ConfigurationError
from trustlab.core.models import build_model
from trustlab.core.training import accuracy, fit_classifier
from trustlab.core.weights import save_model
from trustlab.tasks._csv import decode
from trustlab.tasks._scoring import bootstrap_interval, mean, score_parts, stratified_public_mask
from trustlab.tasks._training import (
    architecture_arguments,
    epoch_progress,
    load_arrays,
    seeded_single_thread,
)
from trustlab.tasks.base import ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.conformal.params import ConformalParams
from trustlab.tasks.conformal.submission import read_sets
from trustlab.tasks.model_submission import check_architecture_name
from trustlab.tasks.readme import render_readme
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec, parse_params

MSG_TOO_SMALL = (
    "params: the data set {dataset!r} has {available} examples, but the task needs {needed} "
    "(n_train + n_calibration + n_test); lower them."
)


@register_kind
class Conformal(TaskKind):
    """Submit prediction sets with guaranteed coverage that are as small as possible."""

    name = "conformal"
    params_model = ConformalParams
    higher_is_better = True
    submission_format = (
        "CSV of prediction sets, one row per test id: header 'id,labels' with the set's class "
        "indices separated by spaces (e.g. '3 7'), or header 'id,0,1,...' with a 0/1 column "
        "per class."
    )

    def _params(self, spec: TaskSpec) -> ConformalParams:
        return parse_params(spec, self.params_model, as_type=ConformalParams)

    def metric_names(self, spec: TaskSpec) -> list[str]:
        return ["score"]

    def check_spec(self, spec: TaskSpec) -> list[str]:
        problems = super().check_spec(spec)
        params = self._params(spec)
        problems += check_architecture_name(params.architecture, field="params.architecture")
        return problems

    def rules_text(self, spec: TaskSpec) -> str:
        params = self._params(spec)
        return (
            f"On each part, coverage is the share of test examples whose set contains the true "
            f"label and size the mean number of labels per set. If coverage is below "
            f"1 - alpha - tolerance = 1 - {params.alpha:g} - {params.tolerance:g} = "
            f"{params.coverage_floor:.4g}, the submission is refused on that part: score 0. "
            f"Otherwise score = 1 - size / n_classes (higher is better; sets of every class "
            f"score 0, one label per example scores 1 - 1 / n_classes)."
        )

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        x, y = load_arrays(spec.dataset)
        needed = params.n_train + params.n_calibration + params.n_test
        if len(x) < needed:
            raise ConfigurationError(
                MSG_TOO_SMALL.format(dataset=spec.dataset, available=len(x), needed=needed)
            )
        n_classes = int(y.max()) + 1
        rng = np.random.default_rng(spec.seed)
        order = rng.permutation(len(x))
        train = order[: params.n_train]
        calibration = order[params.n_train : params.n_train + params.n_calibration]
        test = order[params.n_train + params.n_calibration : needed]

        progress(f"training the model ({params.architecture}) on {len(train)} examples")
        with seeded_single_thread(spec.seed):
            arguments = architecture_arguments(
                params.architecture,
                {"num_classes": n_classes, **params.architecture_arguments},
                x=x,
            )
            model = build_model(params.architecture, arguments=arguments)
            fit_classifier(
                model,
                x[train],
                y[train],
                epochs=params.epochs,
                lr=params.lr,
                batch_size=params.batch_size,
                seed=spec.seed,
                progress=epoch_progress(progress, epochs=params.epochs),
            )
            test_acc = accuracy(model, x[test], y[test])
        progress(f"test accuracy {test_acc:.3f}")

        ids = np.arange(len(test), dtype=np.int64)
        public = stratified_public_mask(y[test], spec.public_fraction, rng)
        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        save_model(model, paths.public / "model.safetensors", metadata={"trustlab.task": spec.id})
        save_npz(paths.public / "calibration.npz", x=x[calibration], y=y[calibration])
        save_npz(paths.public / "test.npz", ids=ids, x=x[test])
        save_npz(paths.hidden / "answers.npz", ids=ids, y=y[test], public=public)
        every = " ".join(str(k) for k in range(n_classes))
        lines = ["id,labels"] + [f"{i},{every}" for i in ids.tolist()]
        (paths.public / "sample_submission.csv").write_text("\n".join(lines) + "\n")
        context = {
            "spec": spec,
            "params": params,
            "test_acc": test_acc,
            "n_classes": n_classes,
            "n_test": len(ids),
            "rules": self.rules_text(spec),
        }
        (paths.public / "README.md").write_text(render_readme(self.name, context=context))

    def _n_classes(self, paths: TaskPaths) -> int:
        with np.load(paths.public / "calibration.npz", allow_pickle=False) as data:
            return int(data["y"].max()) + 1

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        with np.load(paths.public / "test.npz", allow_pickle=False) as data:
            ids = data["ids"]
        sets = read_sets(decode(file.read_bytes()), ids=ids, n_classes=self._n_classes(paths))
        return {"rows": len(sets)}

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        params = self._params(spec)
        n_classes = self._n_classes(paths)
        with np.load(paths.hidden / "answers.npz", allow_pickle=False) as answers:
            ids, y, public = answers["ids"], answers["y"], answers["public"]
        sets = read_sets(decode(file.read_bytes()), ids=ids, n_classes=n_classes)
        matrix = np.stack([sets[i] for i in ids.tolist()])
        covered = matrix[np.arange(len(ids)), y].astype(np.float64)
        sizes = matrix.sum(axis=1).astype(np.float64)
        return score_parts(
            public,
            lambda mask: part_metrics(
                covered=covered[mask],
                sizes=sizes[mask],
                n_classes=n_classes,
                params=params,
                seed=spec.seed,
            ),
            primary="score",
        )


def part_metrics(
    *,
    covered: np.ndarray,
    sizes: np.ndarray,
    n_classes: int,
    params: ConformalParams,
    seed: int,
) -> dict[str, Any]:
    """Coverage, mean set size, whether the coverage floor holds, and the score of one part."""
    coverage = float(covered.mean())
    size = float(sizes.mean())
    valid = coverage >= params.coverage_floor
    result: dict[str, Any] = {
        "score": (1.0 - size / n_classes) if valid else 0.0,
        "coverage": coverage,
        "mean_set_size": size,
        "coverage_floor": params.coverage_floor,
        "valid": 1.0 if valid else 0.0,
        "empty_sets": float(np.mean(sizes == 0)),
    }
    if params.bootstrap_resamples > 0:
        for name, values in (("coverage", covered), ("mean_set_size", sizes)):
            result[f"{name}_ci95"] = bootstrap_interval(
                mean, arrays={"values": values}, resamples=params.bootstrap_resamples, seed=seed
            )
    return result

"""The ``ood-detection`` kind: build a task, check and score a file of outlier scores."""

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
from trustlab.tasks._csv import decode, read_scores
from trustlab.tasks._scoring import bootstrap_interval, score_parts, stratified_public_mask
from trustlab.tasks._training import (
    architecture_arguments,
    epoch_progress,
    load_arrays,
    seeded_single_thread,
)
from trustlab.tasks.base import ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.model_submission import check_architecture_name
from trustlab.tasks.ood_detection.params import OODParams
from trustlab.tasks.readme import render_readme
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec, parse_params
from trustlab.uncertainty import aupr_in, aupr_out, auroc, fpr_at_tpr

MSG_TOO_SMALL = (
    "params: the data set {dataset!r} has {available} examples of the in-distribution classes "
    "{classes} and {other} of the others, but the task needs {needed_in} and {needed_out} "
    "(n_train + n_test_in, n_test_ood_classes); lower them."
)
MSG_CLASSES = (
    "field 'params.in_classes': the data set {dataset!r} has classes 0 to {top}; {bad} is not "
    "one of them."
)

#: Where each test example comes from (hidden ``source`` codes).
SOURCES = ("in-distribution", "held-out class", "smoothed noise", "strokes")


def _fpr_name(tpr: float) -> str:
    return f"fpr@{round(100 * tpr):d}"


def _tnr_name(tpr: float) -> str:
    return f"tnr@{round(100 * tpr):d}"


def synthetic_inputs(n: int, *, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """``n`` out-of-distribution inputs in [0, 1]: half smoothed noise, half random strokes.

    Strokes are 2 or 3 straight lines (rows, columns or diagonals) at full intensity on a dark
    background, like letters drawn on the digits' grid; inputs that are not images get uniform
    noise only.
    """
    out = np.zeros((n, *shape), dtype=np.float32)
    if n == 0:
        return out
    n_noise = n - n // 2 if len(shape) == 3 else n
    noise = rng.random((n_noise, *shape)).astype(np.float32)
    if len(shape) == 3:
        padded = np.pad(noise, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        h, w = shape[1:]
        smooth = sum(
            padded[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)
        ) / np.float32(9.0)
        low = smooth.min(axis=(1, 2, 3), keepdims=True)
        high = smooth.max(axis=(1, 2, 3), keepdims=True)
        noise = (smooth - low) / np.maximum(high - low, 1e-6)
    out[:n_noise] = noise
    if len(shape) == 3:
        _, h, w = shape
        for i in range(n_noise, n):
            for _ in range(int(rng.integers(2, 4))):
                kind = int(rng.integers(0, 4))
                if kind == 0:
                    out[i, :, int(rng.integers(0, h)), :] = 1.0
                elif kind == 1:
                    out[i, :, :, int(rng.integers(0, w))] = 1.0
                else:
                    diag = np.eye(h, w, k=int(rng.integers(-2, 3)), dtype=np.float32)
                    out[i] = np.maximum(out[i], diag[::-1] if kind == 3 else diag)
    return out


@register_kind
class OODDetection(TaskKind):
    """Score each test input: in-distribution or out-of-distribution for the task's model."""

    name = "ood-detection"
    params_model = OODParams
    higher_is_better = True
    submission_format = (
        "CSV 'id,score': a header line, then one line per test id with a finite outlier score "
        "(higher = more likely out-of-distribution)."
    )

    def _params(self, spec: TaskSpec) -> OODParams:
        return parse_params(spec, self.params_model, as_type=OODParams)

    def metric_names(self, spec: TaskSpec) -> list[str]:
        params = self._params(spec)
        return ["auroc", _tnr_name(params.tpr), "aupr_in", "aupr_out"]

    def check_spec(self, spec: TaskSpec) -> list[str]:
        problems = super().check_spec(spec)
        params = self._params(spec)
        problems += check_architecture_name(params.architecture, field="params.architecture")
        return problems

    def rules_text(self, spec: TaskSpec) -> str:
        params = self._params(spec)
        return (
            f"Scored by the ROC AUC of your scores with out-of-distribution as the positive "
            f"class (leaderboard metric {spec.metric!r}); also shown: the FPR at "
            f"{params.tpr:.0%} TPR (the share of OOD inputs you accept as in-distribution when "
            f"your threshold accepts {params.tpr:.0%} of the in-distribution ones), "
            f"{_tnr_name(params.tpr)} = 1 - that FPR, AUPR-in and AUPR-out."
        )

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        x, y = load_arrays(spec.dataset)
        top = int(y.max())
        bad = [k for k in params.in_classes if k > top]
        if bad:
            raise ConfigurationError(MSG_CLASSES.format(dataset=spec.dataset, top=top, bad=bad[0]))
        inside = np.flatnonzero(np.isin(y, params.in_classes))
        outside = np.flatnonzero(~np.isin(y, params.in_classes))
        needed_in = params.n_train + params.n_test_in
        if len(inside) < needed_in or len(outside) < params.n_test_ood_classes:
            raise ConfigurationError(
                MSG_TOO_SMALL.format(
                    dataset=spec.dataset,
                    available=len(inside),
                    classes=params.in_classes,
                    other=len(outside),
                    needed_in=needed_in,
                    needed_out=params.n_test_ood_classes,
                )
            )
        rng = np.random.default_rng(spec.seed)
        inside, outside = rng.permutation(inside), rng.permutation(outside)
        train, test_in = inside[: params.n_train], inside[params.n_train : needed_in]
        test_out = outside[: params.n_test_ood_classes]
        remap = np.full(top + 1, -1, dtype=np.int64)
        remap[params.in_classes] = np.arange(len(params.in_classes))

        progress(f"training the model ({params.architecture}) on {len(train)} examples")
        with seeded_single_thread(spec.seed):
            arguments = architecture_arguments(
                params.architecture,
                {"num_classes": len(params.in_classes), **params.architecture_arguments},
                x=x,
            )
            model = build_model(params.architecture, arguments=arguments)
            fit_classifier(
                model,
                x[train],
                remap[y[train]],
                epochs=params.epochs,
                lr=params.lr,
                batch_size=params.batch_size,
                seed=spec.seed,
                progress=epoch_progress(progress, epochs=params.epochs),
            )
            test_acc = accuracy(model, x[test_in], remap[y[test_in]])
        progress(f"in-distribution test accuracy {test_acc:.3f}")

        synthetic = synthetic_inputs(params.n_test_synthetic, shape=x.shape[1:], rng=rng)
        n_noise = params.n_test_synthetic - params.n_test_synthetic // 2
        test_x = np.concatenate([x[test_in], x[test_out], synthetic]).astype(np.float32)
        source = np.concatenate(
            [
                np.zeros(len(test_in), np.int8),
                np.ones(len(test_out), np.int8),
                np.full(n_noise, 2, np.int8),
                np.full(params.n_test_synthetic - n_noise, 3, np.int8),
            ]
        )
        shuffle = rng.permutation(len(test_x))
        test_x, source = test_x[shuffle], source[shuffle]
        is_ood = (source > 0).astype(np.int8)
        ids = np.arange(len(test_x), dtype=np.int64)
        public = stratified_public_mask(source, spec.public_fraction, rng)

        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        save_model(model, paths.public / "model.safetensors", metadata={"trustlab.task": spec.id})
        save_npz(paths.public / "train.npz", x=x[train], y=remap[y[train]])
        save_npz(paths.public / "test.npz", ids=ids, x=test_x)
        save_npz(paths.hidden / "answers.npz", ids=ids, is_ood=is_ood, source=source, public=public)
        sample = rng.random(len(ids))
        lines = ["id,score"] + [
            f"{i},{s:.6f}" for i, s in zip(ids.tolist(), sample.tolist(), strict=True)
        ]
        (paths.public / "sample_submission.csv").write_text("\n".join(lines) + "\n")
        context = {
            "spec": spec,
            "params": params,
            "test_acc": test_acc,
            "n_test": len(ids),
            "rules": self.rules_text(spec),
            "fpr_name": _fpr_name(params.tpr),
        }
        (paths.public / "README.md").write_text(render_readme(self.name, context=context))

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        with np.load(paths.public / "test.npz", allow_pickle=False) as data:
            ids = data["ids"]
        scores = read_scores(decode(file.read_bytes()), ids=ids)
        return {"rows": len(scores)}

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        params = self._params(spec)
        with np.load(paths.hidden / "answers.npz", allow_pickle=False) as answers:
            ids, is_ood, public = answers["ids"], answers["is_ood"], answers["public"]
        scores = read_scores(decode(file.read_bytes()), ids=ids)
        values = np.array([scores[i] for i in ids.tolist()], dtype=np.float64)
        primary = spec.metric or "auroc"
        return score_parts(
            public,
            lambda mask: part_metrics(
                is_ood=is_ood[mask].astype(np.int64),
                scores=values[mask],
                tpr=params.tpr,
                resamples=params.bootstrap_resamples,
                seed=spec.seed,
            ),
            primary=primary,
        )


def part_metrics(
    *, is_ood: np.ndarray, scores: np.ndarray, tpr: float, resamples: int, seed: int
) -> dict[str, Any]:
    """Every metric of one part, with 95% bootstrap intervals of the AUROC and the FPR."""
    fpr = fpr_at_tpr(is_ood=is_ood, scores=scores, tpr=tpr)
    result: dict[str, Any] = {
        "auroc": auroc(is_ood=is_ood, scores=scores),
        _tnr_name(tpr): 1.0 - fpr,
        _fpr_name(tpr): fpr,
        "aupr_in": aupr_in(is_ood=is_ood, scores=scores),
        "aupr_out": aupr_out(is_ood=is_ood, scores=scores),
    }
    if resamples > 0:
        arrays = {"is_ood": is_ood, "scores": scores}
        result["auroc_ci95"] = bootstrap_interval(
            auroc, arrays=arrays, resamples=resamples, seed=seed, stratify="is_ood"
        )

        def fpr_metric(is_ood: np.ndarray, scores: np.ndarray) -> float:
            return fpr_at_tpr(is_ood=is_ood, scores=scores, tpr=tpr)

        result[f"{_fpr_name(tpr)}_ci95"] = bootstrap_interval(
            fpr_metric, arrays=arrays, resamples=resamples, seed=seed, stratify="is_ood"
        )
    return result

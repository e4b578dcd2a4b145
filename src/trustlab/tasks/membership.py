"""The ``membership-inference`` task kind.

Building a task trains a target model on a *member* subset of a data set with the spec's seed,
then publishes:

``target.safetensors``
    The target's weights, with its architecture in the metadata
    (``trustlab.load_model("target.safetensors")`` rebuilds it).
``candidates.npz``
    ``ids``, ``x``, ``y``: the examples to score, shuffled; ``member_fraction`` of them
    (default one half) are members.
``calibration.npz``
    ``x``, ``y``, ``member``: a smaller labelled set (half members) for calibrating an attack.
``population.npz``
    ``x``, ``y``: the rest of the data set, never seen by the target (for shadow or reference
    models).
``sample_submission.csv`` and ``README.md``
    The submission format, filled with random scores, and the rules
    (``templates/membership-inference_readme.md.j2``).

Bring your own: ``params.data_file`` (an ``.npz`` with ``x`` and ``y``) replaces the registered
data set; ``params.model_file`` (safetensors with its architecture in the metadata, or a
self-contained ONNX file, published as ``target.onnx``) replaces the trained target, and then
the ``.npz`` must also hold ``member`` (1 for the rows the model was trained on, 0 for rows it
never saw): candidates and calibration rows are drawn from both, the population from the rest of
the non-members.

A submission is a CSV file ``id,score``: a header line, then every candidate id exactly once
with a finite score, higher meaning "more likely a member". It is scored by the TPR at each of
the spec's FPRs (default 5%) and the ROC AUC, separately on the public and private parts of
the candidates (see :func:`trustlab.core.metrics.tpr_at_fpr` for the threshold rule).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trustlab.core.data import save_npz
from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.core.metrics import auc, tpr_at_fpr, tpr_at_fprs
from trustlab.core.models import build_model
from trustlab.core.training import accuracy, fit_classifier
from trustlab.core.weights import save_model
from trustlab.tasks import _csv
from trustlab.tasks._scoring import bootstrap_interval, score_parts, stratified_public_mask
from trustlab.tasks._training import (
    MSG_OWN_MODEL,
    MSG_OWN_MODEL_SUFFIX,
    TaskData,
    architecture_arguments,
    epoch_progress,
    file_digest,
    load_own_model,
    load_task_data,
    own_file,
    seeded_single_thread,
)
from trustlab.tasks.base import ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.model_submission import check_architecture_name
from trustlab.tasks.readme import render_readme
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec, parse_params

MSG_TOO_SMALL = (
    "params: {dataset} has {available} examples, but the task needs "
    "{needed} (candidates + calibration); lower n_candidates or n_calibration."
)
MSG_TOO_FEW_OWN = (
    "params: {dataset} has {members} member and {non_members} non-member rows, but the task "
    "needs {need_in} members and {need_out} non-members (candidates + calibration); lower "
    "n_candidates or n_calibration, or add rows."
)


class MembershipParams(BaseModel):
    """Parameters of a membership-inference task (the spec's ``params``)."""

    model_config = ConfigDict(extra="forbid")

    architecture: str = "digits-cnn"
    architecture_arguments: dict[str, Any] = Field(default_factory=dict)
    n_candidates: int = Field(default=800, ge=20)
    member_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    n_calibration: int = Field(default=200, ge=2)
    epochs: int = Field(default=60, ge=1, le=10_000)
    lr: float = Field(default=1e-3, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    weight_decay: float = Field(default=0.0, ge=0.0)
    fprs: list[float] = Field(default_factory=lambda: [0.05], min_length=1)
    bootstrap_resamples: int = Field(default=200, ge=0)
    data_file: str | None = None
    model_file: str | None = None

    @field_validator("n_calibration")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"must be even (half members, half non-members); got {value}")
        return value

    @property
    def n_candidate_members(self) -> int:
        return max(1, min(self.n_candidates - 1, round(self.n_candidates * self.member_fraction)))

    @field_validator("fprs")
    @classmethod
    def _fprs(cls, value: list[float]) -> list[float]:
        for fpr in value:
            if not 0.0 < fpr < 1.0:
                raise ValueError(f"every FPR must lie strictly between 0 and 1; got {fpr}")
        return value


#: How the membership task's messages name an id.
CANDIDATE_NOUN = "candidate id"


def _metric_name(fpr: float) -> str:
    return f"tpr@{fpr:g}"


def read_scores(text: str, *, candidate_ids: np.ndarray) -> dict[int, float]:
    """Parse and validate an ``id,score`` CSV against the candidate ids.

    Raises
    ------
    SubmissionError
        With the line number and what to fix for the first problem found.
    """
    return _csv.read_scores(text, ids=candidate_ids, artifact="candidates.npz", noun=CANDIDATE_NOUN)


@register_kind
class MembershipInference(TaskKind):
    """Membership inference against a target model trained on part of a data set."""

    name = "membership-inference"
    params_model = MembershipParams
    higher_is_better = True
    submission_format = (
        "CSV 'id,score': a header line, then one line per candidate id with a finite score "
        "(higher = more likely a member)."
    )

    def _params(self, spec: TaskSpec) -> MembershipParams:
        return parse_params(spec, self.params_model, as_type=MembershipParams)

    def metric_names(self, spec: TaskSpec) -> list[str]:
        params = self._params(spec)
        return [_metric_name(f) for f in params.fprs] + ["auc"]

    def check_spec(self, spec: TaskSpec) -> list[str]:
        problems = super().check_spec(spec)
        params = self._params(spec)
        problems += check_architecture_name(params.architecture, field="params.architecture")
        return problems

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        data = load_task_data(
            spec.dataset, data_file=params.data_file, need_member=params.model_file is not None
        )
        x, y = data.x, data.y
        cand_in = params.n_candidate_members
        cand_out = params.n_candidates - cand_in
        half_cal = params.n_calibration // 2
        rng = np.random.default_rng(spec.seed)
        members, non_members, population = _split(data, params, rng)

        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        if params.model_file is None:
            progress(f"training the target ({params.architecture}) on {len(members)} members")
            with seeded_single_thread(spec.seed):
                arguments = architecture_arguments(
                    params.architecture, params.architecture_arguments, x=x
                )
                model = build_model(params.architecture, arguments=arguments)
                fit_classifier(
                    model,
                    x[members],
                    y[members],
                    epochs=params.epochs,
                    lr=params.lr,
                    batch_size=params.batch_size,
                    weight_decay=params.weight_decay,
                    seed=spec.seed,
                    progress=epoch_progress(progress, epochs=params.epochs),
                )
                train_acc = accuracy(model, x[members], y[members])
                test_acc = accuracy(model, x[non_members], y[non_members])
            save_model(
                model, paths.public / "target.safetensors", metadata={"trustlab.task": spec.id}
            )
        else:
            progress(f"using the target {params.model_file} and {data.source}")
            train_acc, test_acc = _publish_own_target(
                params.model_file,
                x=x,
                y=y,
                members=members,
                non_members=non_members,
                spec=spec,
                paths=paths,
            )
        progress(f"target accuracy: members {train_acc:.3f}, non-members {test_acc:.3f}")

        cand_idx = np.concatenate([members[:cand_in], non_members[:cand_out]])
        cand_member = np.concatenate([np.ones(cand_in, np.int8), np.zeros(cand_out, np.int8)])
        shuffle = rng.permutation(len(cand_idx))
        cand_idx, cand_member = cand_idx[shuffle], cand_member[shuffle]
        ids = np.arange(len(cand_idx), dtype=np.int64)
        save_npz(paths.public / "candidates.npz", ids=ids, x=x[cand_idx], y=y[cand_idx])

        cal_idx = np.concatenate([members[cand_in:], non_members[cand_out:]])
        cal_member = np.concatenate([np.ones(half_cal, np.int8), np.zeros(half_cal, np.int8)])
        shuffle = rng.permutation(len(cal_idx))
        save_npz(
            paths.public / "calibration.npz",
            x=x[cal_idx[shuffle]],
            y=y[cal_idx[shuffle]],
            member=cal_member[shuffle],
        )
        save_npz(paths.public / "population.npz", x=x[population], y=y[population])

        public = stratified_public_mask(cand_member, spec.public_fraction, rng)
        save_npz(paths.hidden / "answers.npz", ids=ids, member=cand_member, public=public)

        sample = rng.random(len(ids))
        lines = ["id,score"] + [
            f"{i},{s:.6f}" for i, s in zip(ids.tolist(), sample.tolist(), strict=True)
        ]
        (paths.public / "sample_submission.csv").write_text("\n".join(lines) + "\n")
        (paths.public / "README.md").write_text(
            _readme(
                spec,
                params,
                n_members=len(members),
                n_pop=len(population),
                train_acc=train_acc,
                test_acc=test_acc,
                onnx_target=(paths.public / "target.onnx").is_file(),
            )
        )

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        ids = _load_ids(paths)
        scores = read_scores(_csv.decode(file.read_bytes()), candidate_ids=ids)
        return {"rows": len(scores)}

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        params = self._params(spec)
        with np.load(paths.hidden / "answers.npz", allow_pickle=False) as answers:
            ids, member, public = answers["ids"], answers["member"], answers["public"]
        scores = read_scores(_csv.decode(file.read_bytes()), candidate_ids=ids)
        values = np.array([scores[i] for i in ids.tolist()], dtype=np.float64)
        primary = spec.metric or _metric_name(params.fprs[0])
        return score_parts(
            public,
            lambda mask: _metrics(
                y_true=member[mask].astype(np.int64),
                scores=values[mask],
                fprs=params.fprs,
                primary=primary,
                resamples=params.bootstrap_resamples,
                seed=spec.seed,
            ),
            primary=primary,
        )


def _load_ids(paths: TaskPaths) -> np.ndarray:
    with np.load(paths.public / "candidates.npz", allow_pickle=False) as data:
        ids: np.ndarray = data["ids"]
    return ids


def _metric_fn(name: str) -> Callable[..., float]:
    """The metric called ``name`` (``auc`` or ``tpr@<fpr>``) as a function of labels and scores."""
    if name == "auc":
        return auc
    fpr = float(name.split("@", 1)[1])
    return functools.partial(tpr_at_fpr, fpr=fpr)


def _metrics(
    *,
    y_true: np.ndarray,
    scores: np.ndarray,
    fprs: list[float],
    primary: str,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    tprs = tpr_at_fprs(y_true=y_true, scores=scores, fprs=fprs)
    result: dict[str, Any] = {_metric_name(f): float(tprs[f]) for f in fprs}
    result["auc"] = float(auc(y_true=y_true, scores=scores))
    if resamples > 0:
        for name in dict.fromkeys([primary, "auc"]):
            result[f"{name}_ci95"] = bootstrap_interval(
                _metric_fn(name),
                arrays={"y_true": y_true, "scores": scores},
                resamples=resamples,
                seed=seed,
                stratify="y_true",
            )
    return result


def _split(
    data: TaskData, params: MembershipParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of the members (candidates then calibration), of the non-members (likewise),
    and of the population, drawn with ``rng``."""
    cand_in = params.n_candidate_members
    cand_out = params.n_candidates - cand_in
    half_cal = params.n_calibration // 2
    needed = params.n_candidates + params.n_calibration
    if data.member is None:
        if len(data.x) < needed:
            raise ConfigurationError(
                MSG_TOO_SMALL.format(dataset=data.source, available=len(data.x), needed=needed)
            )
        order = rng.permutation(len(data.x))
        members = order[: cand_in + half_cal]
        non_members = order[cand_in + half_cal : needed]
        return members, non_members, np.sort(order[needed:])
    inside = rng.permutation(np.flatnonzero(data.member == 1))
    outside = rng.permutation(np.flatnonzero(data.member == 0))
    if len(inside) < cand_in + half_cal or len(outside) < cand_out + half_cal:
        raise ConfigurationError(
            MSG_TOO_FEW_OWN.format(
                dataset=data.source,
                members=len(inside),
                non_members=len(outside),
                need_in=cand_in + half_cal,
                need_out=cand_out + half_cal,
            )
        )
    members = inside[: cand_in + half_cal]
    non_members = outside[: cand_out + half_cal]
    return members, non_members, np.sort(outside[cand_out + half_cal :])


def _publish_own_target(
    model_file: str,
    *,
    x: np.ndarray,
    y: np.ndarray,
    members: np.ndarray,
    non_members: np.ndarray,
    spec: TaskSpec,
    paths: TaskPaths,
) -> tuple[float, float]:
    """Publish the instructor's target; return its accuracy on members and non-members."""
    path = own_file(model_file, field="model_file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from trustlab.tasks.onnx_submission import read_onnx

        try:
            onnx_model = read_onnx(
                path, input_shape=tuple(int(d) for d in x.shape[1:]), output_dim=int(y.max()) + 1
            )
            predict = lambda rows: onnx_model(x[rows]).argmax(axis=1)  # noqa: E731
            train_acc = float((predict(members) == y[members]).mean())
            test_acc = float((predict(non_members) == y[non_members]).mean())
        except SubmissionError as exc:
            raise ConfigurationError(MSG_OWN_MODEL.format(path=path, error=exc)) from None
        (paths.public / "target.onnx").write_bytes(path.read_bytes())
        return train_acc, test_acc
    if suffix != ".safetensors":
        raise ConfigurationError(
            MSG_OWN_MODEL_SUFFIX.format(
                path=path, accepted="a .safetensors or .onnx file", suffix=path.suffix
            )
        )
    model = load_own_model(model_file)
    train_acc = accuracy(model, x[members], y[members])
    test_acc = accuracy(model, x[non_members], y[non_members])
    save_model(
        model,
        paths.public / "target.safetensors",
        metadata={"trustlab.task": spec.id, "trustlab.source_sha256": file_digest(path)},
    )
    return train_acc, test_acc


def _readme(
    spec: TaskSpec,
    params: MembershipParams,
    *,
    n_members: int,
    n_pop: int,
    train_acc: float,
    test_acc: float,
    onnx_target: bool = False,
) -> str:
    """The task's README (``templates/membership-inference_readme.md.j2``)."""
    context = {
        "spec": spec,
        "params": params,
        "n_members": n_members,
        "n_pop": n_pop,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "own_model": params.model_file is not None,
        "target_file": "target.onnx" if onnx_target else "target.safetensors",
    }
    return render_readme("membership-inference", context=context)

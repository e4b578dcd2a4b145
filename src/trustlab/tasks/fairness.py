"""The ``fairness`` task kind: an accurate Adult income classifier with a bounded parity gap.

Threat model and setting
------------------------
Not an attack: the team is the model builder. It receives the training split of UCI Adult
(Kohavi, 1996) with its encoding and the sensitive attribute(s) of every row, trains a
classifier by any method it likes (pre-processing, in-processing, post-processing folded into
the weights), and submits the weights of one architecture from the task's list. The server
reads them in a limited process (:mod:`trustlab.tasks.model_submission`: safetensors or a
``weights_only`` state dict, the architecture from the task, never from the file) and scores
the model on hidden rows of Adult's official test split.

Scoring
-------
Predictions are the arg-max of the model's two logits (a tie goes to label 0, ``<=50K``). On
each part of the hidden rows (public and private, stratified by group and label):

* ``accuracy``: the share of rows predicted correctly.
* ``dp_gap``: the demographic-parity difference, the largest minus the smallest rate of
  predicting ``>50K`` across the groups of the sensitive attribute(s) (Calders, Kamiran and
  Pechenizkiy, 2009; Dwork et al., 2012). With two attributes the groups are their
  intersections (e.g. ``Female/Black``). Groups with fewer than ``min_group_size`` rows in a
  part are left out of the gaps, whose value on a handful of rows is mostly noise.
* ``eo_gap`` (shown, not scored): the equalized-odds difference of Hardt, Price and Srebro
  (2016), the larger of the spreads of the true-positive and of the false-positive rates
  across the same groups (a group without positive, or without negative, rows is left out of
  that rate's spread).
* ``score``, the primary metric, by the task's penalty rule:

  - ``linear`` (default): ``accuracy - slope * max(0, dp_gap - gap_bound)``. Within the bound
    the score is the accuracy; beyond it every point of gap costs ``slope`` points. The score
    is not clipped and can be negative.
  - ``zero``: ``accuracy`` if ``dp_gap <= gap_bound``, else 0.

  Percentile bootstrap intervals (95%, resampled within each group so every resample keeps
  every group's size) are given for ``score``, ``accuracy`` and ``dp_gap``.

With binary labels the two gaps are the same whichever label counts as "positive", so the task
has no ``positive_label`` parameter.

Artefacts
---------
``train.npz``
    ``x`` float32 (n, D), ``y`` int64 (n,) with 1 = ``>50K``, and one int64 code array per
    sensitive attribute, named after it (``sex``, ``race``).
``encoding.json``
    ``feature_names`` (D), ``label_names``, ``sensitive`` (attribute to its group names, code
    order) and ``groups`` (the names of the scored groups, intersections included).
``sample_submission.safetensors``
    An unconstrained baseline of the first listed architecture (or ``baseline.architecture``),
    trained at build time with the spec's seed: a valid submission to start from.
``README.md``
    The encoding, the groups, the scoring rule in words and how to submit.

Examples
--------
>>> from trustlab.tasks import parse_spec
>>> spec = parse_spec({"id": "fair-demo", "kind": "fairness", "title": "Fair income",
...                    "dataset": "adult", "params": {"sensitive": ["sex"]}})
>>> spec.metric, spec.params["architectures"][0]["arguments"]["in_features"]
('score', 89)

References
----------
.. [1] R. Kohavi, "Scaling Up the Accuracy of Naive-Bayes Classifiers: a Decision-Tree
   Hybrid", KDD 1996 (the Adult data).
.. [2] T. Calders, F. Kamiran and M. Pechenizkiy, "Building Classifiers with Independency
   Constraints", ICDM Workshops 2009.
.. [3] C. Dwork, M. Hardt, T. Pitassi, O. Reingold and R. Zemel, "Fairness Through Awareness",
   ITCS 2012.
.. [4] M. Hardt, E. Price and N. Srebro, "Equality of Opportunity in Supervised Learning",
   NeurIPS 2016.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from trustlab.core.checks import model_device_and_dtype
from trustlab.core.data import TabularDataset, load_adult, save_npz
from trustlab.core.data.adult import ADULT_DROPPED, ADULT_LABELS, ADULT_SCHEMA
from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.core.training import fit_classifier
from trustlab.core.weights import save_model
from trustlab.fairness import demographic_parity_difference, equalized_odds_difference
from trustlab.tasks._scoring import bootstrap_interval, score_parts, stratified_public_mask
from trustlab.tasks._training import epoch_progress, seeded_single_thread
from trustlab.tasks.base import FormField, ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.model_submission import (
    MODEL_NAME_FIELD,
    ArchitectureChoice,
    check_architectures,
    load_submitted_model,
    model_name_field,
)
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec

Attribute = Literal["sex", "race"]

#: Rows of the training split checked by a forward pass at intake.
VALIDATION_ROWS = 16
#: Rows per forward pass when scoring.
BATCH_SIZE = 1024
#: Slack allowed on ``dp_gap <= gap_bound`` for rounding in the rates.
GAP_TOLERANCE = 1e-12

MSG_DUPLICATE_ATTRIBUTE = "names {name!r} twice; list each attribute once"
MSG_DATASET = (
    "field 'dataset': the fairness kind is built on UCI Adult; write dataset: adult (got {got!r})"
)
MSG_LOWER_IS_BETTER = (
    "field 'metric': {metric!r} is lower-is-better but leaderboards of this kind rank higher "
    "scores first; use 'score' or 'accuracy'"
)
MSG_BAD_SHAPE_SPEC = (
    "field 'params.architectures': architecture {name!r} must map Adult rows of shape (n, {d}) "
    "to logits of shape (n, 2); {problem}"
)
MSG_BASELINE = (
    "field 'params.baseline.architecture': {name!r} is not one of the task's architectures "
    "({names})"
)
MSG_TOO_MANY_ROWS = (
    "params: {field} is {got}, but Adult's {split} split has only {available} rows; "
    "lower {field} or leave it out to use every row."
)
MSG_FEW_GROUPS = (
    "params: the {part} part of the hidden rows has {count} group(s) with at least "
    "min_group_size={min_size} rows, but a parity gap needs two; raise n_test or lower "
    "min_group_size."
)
MSG_OUTPUT_TYPE = (
    "Your model must return a tensor of logits of shape (n, 2) for n Adult rows; it returned "
    "a {what}."
)
MSG_OUTPUT_SHAPE = (
    "Your model must return logits of shape (n, 2) for n Adult rows (column 1 = '>50K'); for "
    "{n} rows it returned shape {shape}."
)
MSG_OUTPUT_NON_FINITE = (
    "Your model returned NaN or infinite logits for {count} of {n} rows (first: row {index}); "
    "every logit must be a finite number."
)
MSG_FORWARD_FAILED = "Your model failed on Adult rows of shape (n, {d}): {error}"


def adult_feature_count(*, sensitive: Sequence[str], include_sensitive_in_features: bool) -> int:
    """The number of columns of Adult's ``x`` for these loader options (89 by default).

    Examples
    --------
    >>> adult_feature_count(sensitive=["sex"], include_sensitive_in_features=False)
    87
    """
    dropped = set(ADULT_DROPPED)
    if not include_sensitive_in_features:
        dropped.update(sensitive)
    return sum(
        1 if values is None else len(values)
        for column, values in ADULT_SCHEMA.items()
        if column not in dropped
    )


class PenaltyRule(BaseModel):
    """How the score falls once the demographic-parity gap exceeds the task's bound.

    ``linear``: ``accuracy - slope * max(0, gap - bound)``. ``zero``: ``accuracy`` within the
    bound, 0 beyond it (``slope`` is ignored).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["linear", "zero"] = "linear"
    slope: float = Field(default=2.0, gt=0.0, le=1000.0)

    def apply(self, *, accuracy: float, gap: float, bound: float) -> float:
        """The score of a model with this accuracy and gap.

        Examples
        --------
        >>> round(PenaltyRule(slope=2.0).apply(accuracy=0.8, gap=0.15, bound=0.05), 6)
        0.6
        >>> PenaltyRule(kind="zero").apply(accuracy=0.8, gap=0.15, bound=0.05)
        0.0
        """
        if self.kind == "zero":
            return float(accuracy) if gap <= bound + GAP_TOLERANCE else 0.0
        return float(accuracy - self.slope * max(0.0, gap - bound))

    def describe(self, *, bound: float) -> str:
        """The rule in words, for the task's page and README."""
        if self.kind == "zero":
            return (
                f"score = accuracy if the demographic-parity gap is at most {bound:g}, "
                "and 0 otherwise"
            )
        return (
            f"score = accuracy - {self.slope:g} x max(0, demographic-parity gap - {bound:g}): "
            f"the accuracy counts in full while the gap is at most {bound:g}, and every point "
            f"of gap beyond it costs {self.slope:g} points of score"
        )


class BaselineRecipe(BaseModel):
    """How the sample submission (an unconstrained baseline) is trained at build time."""

    model_config = ConfigDict(extra="forbid")

    architecture: str | None = None
    epochs: int = Field(default=5, ge=1, le=1000)
    lr: float = Field(default=1e-2, gt=0.0)
    batch_size: int = Field(default=256, ge=1)
    weight_decay: float = Field(default=0.0, ge=0.0)


def _default_sensitive() -> list[Attribute]:
    return ["sex"]


def _default_architectures() -> list[ArchitectureChoice]:
    return [
        ArchitectureChoice(name="logreg", architecture="mlp", arguments={"hidden": []}),
        ArchitectureChoice(name="mlp-32", architecture="mlp", arguments={"hidden": [32]}),
        ArchitectureChoice(name="mlp-64x2", architecture="mlp", arguments={"hidden": [64, 64]}),
    ]


class FairnessParams(BaseModel):
    """Parameters of a fairness task (the spec's ``params``).

    An ``mlp`` entry of ``architectures`` without ``in_features`` gets the task's feature
    count (89 with the sensitive columns kept).
    """

    model_config = ConfigDict(extra="forbid")

    sensitive: list[Attribute] = Field(default_factory=_default_sensitive, min_length=1)
    include_sensitive_in_features: bool = True
    gap_bound: float = Field(default=0.05, ge=0.0, lt=1.0)
    penalty: PenaltyRule = Field(default_factory=PenaltyRule)
    architectures: list[ArchitectureChoice] = Field(
        default_factory=_default_architectures, min_length=1
    )
    n_train: int | None = Field(default=None, ge=100)
    n_test: int | None = Field(default=None, ge=100)
    min_group_size: int = Field(default=30, ge=1)
    baseline: BaselineRecipe = Field(default_factory=BaselineRecipe)
    bootstrap_resamples: int = Field(default=200, ge=0)

    @field_validator("sensitive")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        for name in value:
            if value.count(name) > 1:
                raise ValueError(MSG_DUPLICATE_ATTRIBUTE.format(name=name))
        return value

    @model_validator(mode="after")
    def _fill_in_features(self) -> FairnessParams:
        d = self.n_features
        filled = []
        for choice in self.architectures:
            if choice.registry_name == "mlp" and "in_features" not in choice.arguments:
                choice = choice.model_copy(
                    update={"arguments": {**choice.arguments, "in_features": d}}
                )
            filled.append(choice)
        self.architectures = filled
        return self

    @property
    def attributes(self) -> list[str]:
        """The sensitive attributes, in the spec's order."""
        return [str(name) for name in self.sensitive]

    @property
    def n_features(self) -> int:
        return adult_feature_count(
            sensitive=self.sensitive,
            include_sensitive_in_features=self.include_sensitive_in_features,
        )

    def baseline_choice(self) -> ArchitectureChoice:
        name = self.baseline.architecture or self.architectures[0].name
        return next(c for c in self.architectures if c.name == name)


# --------------------------------------------------------------------------------------------
# Groups and metrics


def group_codes(codes: Mapping[str, np.ndarray], labels: Mapping[str, Sequence[str]]) -> np.ndarray:
    """One int64 code per row for the intersection of the attributes, in mixed radix.

    The first attribute varies slowest: with ``sex`` (2 groups) then ``race`` (5 groups), the
    code is ``5 * sex + race``.
    """
    combined = np.zeros(len(next(iter(codes.values()))), dtype=np.int64)
    for name, values in codes.items():
        combined = combined * len(labels[name]) + np.asarray(values, dtype=np.int64)
    return combined


def group_names(labels: Mapping[str, Sequence[str]]) -> list[str]:
    """The name of every code of :func:`group_codes`, e.g. ``"Female/White"``."""
    names = [""]
    for values in labels.values():
        names = [
            f"{prefix}/{value}" if prefix else str(value) for prefix in names for value in values
        ]
    return names


def _rates(values: np.ndarray, group: np.ndarray) -> dict[int, float]:
    """The mean of ``values`` in every group present."""
    present = np.unique(group)
    return {int(g): float(values[group == g].mean()) for g in present}


def equalized_odds_gap(*, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> float:
    """:func:`trustlab.fairness.equalized_odds_difference` over the groups where it is defined.

    A group without positive or without negative rows has no TPR or no FPR; its rows are left
    out. With fewer than two groups left the gap is 0.
    """
    defined = [
        g
        for g in np.unique(group)
        if np.any(y_true[group == g] == 1) and np.any(y_true[group == g] == 0)
    ]
    if len(defined) < 2:
        return 0.0
    rows = np.isin(group, defined)
    return float(
        equalized_odds_difference(
            y_true=y_true[rows], y_pred=y_pred[rows], sensitive_features=group[rows]
        )
    )


def _accuracy(
    *, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, counted: np.ndarray
) -> float:
    del group, counted
    return float(np.mean(y_true == y_pred))


def _dp_gap(
    *, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, counted: np.ndarray
) -> float:
    del y_true
    return float(
        demographic_parity_difference(y_pred=y_pred[counted], sensitive_features=group[counted])
    )


def part_metrics(
    *,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    group: np.ndarray,
    names: Sequence[str],
    gap_bound: float,
    penalty: PenaltyRule,
    min_group_size: int,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Every metric of one part of the hidden rows (see the module docstring).

    Parameters
    ----------
    y_true, y_pred : np.ndarray of int64, shape (n,)
        Labels and predicted labels (0 or 1).
    group : np.ndarray of int64, shape (n,)
        Codes from :func:`group_codes`; ``names[code]`` names each.
    """
    sizes = {int(g): int(c) for g, c in zip(*np.unique(group, return_counts=True), strict=True)}
    counted = np.isin(group, [g for g, c in sizes.items() if c >= min_group_size])

    def score(
        *, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, counted: np.ndarray
    ) -> float:
        arrays = {"y_true": y_true, "y_pred": y_pred, "group": group, "counted": counted}
        return penalty.apply(accuracy=_accuracy(**arrays), gap=_dp_gap(**arrays), bound=gap_bound)

    arrays = {"y_true": y_true, "y_pred": y_pred, "group": group, "counted": counted}
    result: dict[str, Any] = {
        "score": score(**arrays),
        "accuracy": _accuracy(**arrays),
        "dp_gap": _dp_gap(**arrays),
        "eo_gap": equalized_odds_gap(
            y_true=y_true[counted], y_pred=y_pred[counted], group=group[counted]
        ),
        "gap_bound": float(gap_bound),
        "rows": len(y_true),
        "groups_scored": int(sum(c >= min_group_size for c in sizes.values())),
    }
    if resamples > 0:
        for name, metric in (("score", score), ("accuracy", _accuracy), ("dp_gap", _dp_gap)):
            result[f"{name}_ci95"] = bootstrap_interval(
                metric, arrays=arrays, resamples=resamples, seed=seed, stratify="group"
            )
    rates = _rates(y_pred == 1, group)
    for code, size in sizes.items():
        if size >= min_group_size:
            result[f"selection_rate[{names[code]}]"] = rates[code]
    return result


# --------------------------------------------------------------------------------------------
# The kind


@register_kind
class Fairness(TaskKind):
    """Accuracy on Adult's income task, traded against a demographic-parity gap."""

    name = "fairness"
    params_model = FairnessParams
    higher_is_better = True
    submission_format = (
        "Model weights (safetensors, or a .pt state dict) of one of the task's architectures, "
        "named in the form field 'model_name'; the model maps encoded Adult rows (n, D) to "
        "logits (n, 2), column 1 meaning '>50K'."
    )
    form_fields = (model_name_field(()),)

    def _params(self, spec: TaskSpec) -> FairnessParams:
        params = self.params_model.model_validate(spec.params)
        assert isinstance(params, FairnessParams)
        return params

    def metric_names(self, spec: TaskSpec) -> list[str]:
        return ["score", "accuracy", "dp_gap", "eo_gap"]

    def form_fields_for(self, spec: TaskSpec) -> tuple[FormField, ...]:
        return (model_name_field(self._params(spec).architectures),)

    def rules_text(self, spec: TaskSpec) -> str:
        params = self._params(spec)
        groups = " x ".join(params.attributes)
        text = (
            f"Scoring: {params.penalty.describe(bound=params.gap_bound)}, on the public and "
            f"the private part of the hidden rows alike. The demographic-parity "
            f"gap is the largest minus the smallest rate of predicting '>50K' across the "
            f"{groups} groups of the hidden rows (groups with fewer than "
            f"{params.min_group_size} rows in a part are left out)."
        )
        if spec.metric == "accuracy":
            text += " The leaderboard of this task ranks by accuracy alone; the score is shown."
        return text

    def check_spec(self, spec: TaskSpec) -> list[str]:
        problems = super().check_spec(spec)
        if spec.metric in ("dp_gap", "eo_gap"):
            problems.append(MSG_LOWER_IS_BETTER.format(metric=spec.metric))
        if spec.dataset != "adult":
            problems.append(MSG_DATASET.format(got=spec.dataset))
        params = self._params(spec)
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
            for choice in params.architectures:
                problem = _shape_problem(choice.build(), n_features=params.n_features)
                if problem:
                    problems.append(
                        MSG_BAD_SHAPE_SPEC.format(
                            name=choice.name, d=params.n_features, problem=problem
                        )
                    )
        return problems

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        train = _load("train", params)
        test = _load("test", params)
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
        )
        progress(
            f"baseline on the training rows: accuracy {baseline['accuracy']:.3f}, "
            f"dp_gap {baseline['dp_gap']:.3f}"
        )

        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        save_npz(paths.public / "train.npz", x=x_train, y=y_train, **codes_train)
        encoding = {
            "feature_names": list(train.feature_names),
            "label_names": list(ADULT_LABELS),
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
            _readme(
                spec,
                params,
                rules=self.rules_text(spec),
                n_train=len(train_rows),
                feature_names=list(train.feature_names),
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
        labels = {name: list(ADULT_SCHEMA[name] or ()) for name in params.attributes}
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
            ),
            primary=spec.metric or "score",
        )


# --------------------------------------------------------------------------------------------
# Helpers


def _load(split: str, params: FairnessParams) -> TabularDataset:
    data = load_adult(
        split=split,
        sensitive=params.attributes,
        include_sensitive_in_features=params.include_sensitive_in_features,
    )
    assert isinstance(data, TabularDataset)
    return data


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


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _readme(
    spec: TaskSpec,
    params: FairnessParams,
    *,
    rules: str,
    n_train: int,
    feature_names: list[str],
    labels: Mapping[str, Sequence[str]],
    baseline_name: str,
    baseline: Mapping[str, Any],
) -> str:
    deadline = spec.deadline.isoformat() if spec.deadline else "none"
    numeric = [name for name in feature_names if "=" not in name]
    categorical = list(
        dict.fromkeys(name.split("=", 1)[0] for name in feature_names if "=" in name)
    )
    sensitive = "\n".join(
        f"- `{name}`: " + ", ".join(f"{code} {label}" for code, label in enumerate(values))
        for name, values in labels.items()
    )
    archs = "\n".join(
        f"- `{c.name}`: `{c.registry_name}` with arguments `{_json(c.arguments)}`"
        for c in params.architectures
    )
    kept = (
        "The sensitive attributes' own columns are among the features."
        if params.include_sensitive_in_features
        else "The sensitive attributes' own columns are removed from the features (proxies such "
        "as `relationship=Husband` remain)."
    )
    first = params.architectures[0]
    return f"""# {spec.title}

Task id: `{spec.id}` (kind `fairness`), deadline: {deadline}.

{spec.description}

Predict whether a person's income is over $50K (UCI Adult, 1994 census) with a model whose
rate of predicting `>50K` is about the same across the groups of `{" x ".join(params.attributes)}`.

## Scoring

{rules}

Predictions are the arg-max of your model's two logits (a tie counts as `<=50K`). The hidden
rows come from Adult's official test split; they are split into a public part
({spec.public_fraction:.0%}, behind the leaderboard until the deadline) and a private part,
each with the same share of every group and label. Every scoring also reports `accuracy`,
`dp_gap`, `eo_gap` (equalized odds: the larger spread of the true- and false-positive rates
across the groups; shown, not scored), the selection rate of each group and 95% bootstrap
intervals.

## Files

- `train.npz`: `x` float32 ({n_train}, {params.n_features}), `y` int64 (1 = `>50K`), and one int64
  code array per sensitive attribute: {", ".join(f"`{name}`" for name in params.attributes)}.
- `encoding.json`: `feature_names`, `label_names`, `sensitive` (group names in code order) and
  `groups`, the names of the scored groups: with one attribute its groups, with two their
  intersections, the first attribute varying slowest (`Female/White`, `Female/Asian-Pac-Islander`,
  ...).
- `sample_submission.safetensors`: an unconstrained baseline (`{baseline_name}`) trained on
  `train.npz`: accuracy {baseline["accuracy"]:.3f} and demographic-parity gap
  {baseline["dp_gap"]:.3f} on the training rows.

## Encoding

Rows with an unknown ('?') value are dropped. Columns of `x`, in order:

- Standardized with the mean and standard deviation of Adult's training split:
  {", ".join(f"`{name}`" for name in numeric)}.
- One-hot, one column `column=value` per value of the UCI schema, in its order:
  {", ".join(f"`{name}`" for name in categorical)}.
- `education` is dropped (`education-num` carries the same information).

{kept}

Sensitive codes:

{sensitive}

## Submission

Weights of one of these architectures, named in the form field `model_name`:

{archs}

Build the model with `trustlab.core.models.build_model`, train it, and save it with
`trustlab.save_model(model, "model.safetensors")` (or `torch.save(model.state_dict(), "model.pt")`),
for example:

```python
from trustlab.core.models import build_model
model = build_model("{first.registry_name}", arguments={_json(first.arguments)})
```

Then `trustlab submit {spec.id} model.safetensors --field model_name={first.name}`.
"""

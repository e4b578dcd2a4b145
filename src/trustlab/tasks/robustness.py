"""The ``robustness`` task kind: submit a model, be scored on clean and robust accuracy.

Building a task splits an image data set (pixel values in [0, 1]) into a public training set
and a hidden evaluation set, then publishes:

``train.npz``
    ``x``, ``y``: the examples teams train on.
``sample_submission.safetensors``
    A normally trained baseline of the task's first architecture: the submission format, and a
    starting point for adversarial fine-tuning.
``README.md``
    The threat model, the input format, the accepted architectures and the scoring rule.

A submission is a weights file (safetensors, or a ``.pt`` state dict read with
``weights_only=True``) and a ``model_name`` form field naming one of the task's architectures;
the weights must fit it exactly. Validation and scoring run in a limited child process.

Scoring: the clean accuracy on the whole hidden set must reach ``clean_floor``, or the
submission fails with a message giving its accuracy. Then the task's attacks run as a
per-example cascade: each attack gets only the examples every earlier attack failed on, and an
example is robust only if it is classified correctly and every attack failed on it. The score
of each part (public, private) is ``weights.clean * clean_accuracy + weights.robust *
robust_accuracy``. Metrics add bootstrap intervals, the share of examples each attack broke,
the forward and backward passes spent, and the flags of the robustness sanity checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trustlab.core.data import save_npz
from trustlab.core.errors import ConfigurationError, SubmissionError, TrustlabError
from trustlab.core.training import fit_classifier, predict_logits
from trustlab.core.weights import save_model
from trustlab.robustness import (
    Attack,
    AutoAttack,
    Norm,
    SanityReport,
    get_attack,
    make_attack,
    run_sanity_checks,
)
from trustlab.robustness.autoattack import RAND_ATTACKS, STANDARD_ATTACKS
from trustlab.tasks._scoring import bootstrap_interval, mean, score_parts
from trustlab.tasks._training import load_arrays, seeded_single_thread
from trustlab.tasks.base import FormField, ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.model_submission import (
    ArchitectureChoice,
    check_architectures,
    load_submitted_model,
    model_name_field,
)
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec

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
    "{dataset!r} is not one."
)
MSG_TOO_SMALL = (
    "params: the data set {dataset!r} has {available} examples, but n_eval={n_eval} leaves "
    "fewer than {minimum} to train on; lower n_eval."
)
MSG_ATTACK_RESERVED = (
    "field 'params.attacks[{index}].options': do not set {key!r} here; the task sets it for "
    "every attack from params.{key}"
)
MSG_ATTACK_BAD = "field 'params.attacks[{index}]': attack {name!r}: {error}"
MSG_ATTACK_TARGETED = (
    "field 'params.attacks[{index}]': attack {name!r} needs target classes; use an untargeted "
    "attack (targeted ones like apgd-t that pick their own targets are fine)"
)
MSG_ATTACK_NORM = (
    "field 'params.attacks[{index}]': attack {name!r} has no {norm} threat model; it supports "
    "{norms}"
)
MSG_DUPLICATE_ATTACK = (
    "field 'params.attacks': {names} would run twice (an 'autoattack' entry includes "
    "apgd-ce, apgd-t, fab-t and square); list each attack once"
)
MSG_AUTOATTACK = (
    "field 'params.attacks[{index}]': 'autoattack' takes only the option 'version', "
    "'standard' or 'rand'; got {options!r}"
)

#: The attack-list name that stands for an AutoAttack version's attacks.
AUTOATTACK = "autoattack"
AUTOATTACK_VERSIONS = ("standard", "rand")
#: Options the task itself sets for every attack.
RESERVED_OPTIONS = ("norm", "eps", "bounds")
#: Examples fed to the model during validation.
VALIDATION_ROWS = 4
MIN_TRAIN = 50


class AttackEntry(BaseModel):
    """One attack of the evaluation: a registry name (``fgsm``, ``pgd``, ``apgd-ce``, ...) with
    its options, or ``autoattack`` with ``options: {version: standard}`` (or ``rand``), which
    stands for the attacks of that AutoAttack version in their order and configuration."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


class ScoreWeights(BaseModel):
    """Weights of clean and robust accuracy in the score."""

    model_config = ConfigDict(extra="forbid")

    clean: float = Field(default=0.5, ge=0.0)
    robust: float = Field(default=0.5, ge=0.0)

    @model_validator(mode="after")
    def _not_both_zero(self) -> ScoreWeights:
        if self.clean + self.robust <= 0:
            raise ValueError("at least one of 'clean' and 'robust' must be > 0")
        return self


def _default_attacks() -> list[AttackEntry]:
    """FGSM, then PGD on the margin loss.

    PGD ascends the margin ``max_{i != y} z_i - z_y`` rather than the cross-entropy: scaling a
    model's logits by a large factor saturates the softmax, so the cross-entropy's gradient
    vanishes and attacks on it fail (gradient masking that costs the model nothing), while the
    margin's gradient only scales and its sign, the Linf step, does not change.
    """
    return [
        AttackEntry(name="fgsm"),
        AttackEntry(name="pgd", options={"steps": 20, "loss": "margin", "early_stop": True}),
    ]


def _default_architectures() -> list[ArchitectureChoice]:
    return [ArchitectureChoice(name="digits-cnn")]


class RobustnessParams(BaseModel):
    """Parameters of a robustness task (the spec's ``params``)."""

    model_config = ConfigDict(extra="forbid")

    architectures: list[ArchitectureChoice] = Field(
        default_factory=_default_architectures, min_length=1
    )
    norm: Literal["Linf", "L2"] = "Linf"
    eps: float = Field(default=0.1, gt=0.0)
    clean_floor: float = Field(default=0.5, ge=0.0, le=1.0)
    weights: ScoreWeights = Field(default_factory=ScoreWeights)
    attacks: list[AttackEntry] = Field(default_factory=_default_attacks, min_length=1)
    n_eval: int = Field(default=500, ge=20)
    batch_size: int = Field(default=256, ge=1)
    sanity_checks: bool = True
    bootstrap_resamples: int = Field(default=200, ge=0)
    baseline_epochs: int = Field(default=10, ge=1, le=1000)
    baseline_lr: float = Field(default=2e-3, gt=0.0)


def make_cascade(params: RobustnessParams, *, seed: int) -> list[Attack]:
    """The task's attacks, built in cascade order, with an ``autoattack`` entry expanded.

    Every attack gets the task's ``norm``, ``eps``, valid range [0, 1] and ``seed`` (an entry's
    own ``seed`` option wins). Raises ConfigurationError (or TypeError for an unknown option).
    """
    common: dict[str, Any] = {"norm": params.norm, "eps": params.eps, "bounds": (0.0, 1.0)}
    built: list[Attack] = []
    for index, entry in enumerate(params.attacks):
        if entry.name == AUTOATTACK:
            for name, options in _autoattack_attacks(entry, index=index):
                built.append(make_attack(name, options={"seed": seed, **options, **common}))
        else:
            options = {"seed": seed, **entry.options, **common}
            built.append(make_attack(entry.name, options=options))
    return built


def _autoattack_attacks(entry: AttackEntry, *, index: int) -> list[tuple[str, dict[str, Any]]]:
    version = entry.options.get("version", "standard")
    extra = sorted(set(entry.options) - {"version"})
    if extra or version not in AUTOATTACK_VERSIONS:
        raise ConfigurationError(MSG_AUTOATTACK.format(index=index, options=entry.options))
    attacks = STANDARD_ATTACKS if version == "standard" else RAND_ATTACKS
    return [(name, dict(options)) for name, options in attacks]


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
    form_fields = (model_name_field(_default_architectures()),)

    def _params(self, spec: TaskSpec) -> RobustnessParams:
        params = self.params_model.model_validate(spec.params)
        assert isinstance(params, RobustnessParams)
        return params

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
        problems += _attack_problems(params, seed=spec.seed)
        return problems

    # ----------------------------------------------------------------------------------------

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        x, y = load_arrays(spec.dataset)
        if x.ndim < 3 or float(x.min()) < 0.0 or float(x.max()) > 1.0:
            raise ConfigurationError(MSG_NOT_IMAGES.format(dataset=spec.dataset))
        if len(x) - params.n_eval < MIN_TRAIN:
            raise ConfigurationError(
                MSG_TOO_SMALL.format(
                    dataset=spec.dataset, available=len(x), n_eval=params.n_eval, minimum=MIN_TRAIN
                )
            )
        rng = np.random.default_rng(spec.seed)
        order = rng.permutation(len(x))
        hidden = np.sort(order[: params.n_eval])
        train = np.sort(order[params.n_eval :])
        public = np.zeros(len(hidden), dtype=bool)
        public[rng.permutation(len(hidden))[: round(len(hidden) * spec.public_fraction)]] = True

        choice = params.architectures[0]
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
            _readme(
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
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
        logits = predict_logits(model, x, batch_size=params.batch_size)
        clean_correct = (logits.argmax(dim=1) == y).numpy()
        accuracy = float(clean_correct.mean())
        if accuracy < params.clean_floor:
            raise SubmissionError(MSG_FLOOR.format(accuracy=accuracy, floor=params.clean_floor))

        evaluation = AutoAttack(
            norm=params.norm,
            eps=params.eps,
            version="custom",
            attacks=make_cascade(params, seed=spec.seed),
            seed=spec.seed,
        ).run(model=model, x=x, y=y, batch_size=params.batch_size)
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
        robust = evaluation.robust.numpy()
        broken_by = evaluation.broken_by.numpy()

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


def _attack_problems(params: RobustnessParams, *, seed: int) -> list[str]:
    """Spec problems of the attack list: reserved options, unknown or unfit attacks."""
    problems: list[str] = []
    for index, entry in enumerate(params.attacks):
        reserved = [key for key in RESERVED_OPTIONS if key in entry.options]
        if reserved:
            problems.append(MSG_ATTACK_RESERVED.format(index=index, key=reserved[0]))
            continue
        if entry.name == AUTOATTACK:
            try:
                _autoattack_attacks(entry, index=index)
            except ConfigurationError as exc:
                problems.append(str(exc))
            continue
        try:
            cls = get_attack(entry.name)
        except TrustlabError as exc:
            problems.append(MSG_ATTACK_BAD.format(index=index, name=entry.name, error=exc))
            continue
        if cls.targeted:
            problems.append(MSG_ATTACK_TARGETED.format(index=index, name=entry.name))
        elif Norm(params.norm) not in cls.norms:
            norms = ", ".join(norm.value for norm in cls.norms)
            problems.append(
                MSG_ATTACK_NORM.format(index=index, name=entry.name, norm=params.norm, norms=norms)
            )
        else:
            try:
                make_cascade(params.model_copy(update={"attacks": [entry]}), seed=seed)
            except (TrustlabError, TypeError) as exc:
                problems.append(MSG_ATTACK_BAD.format(index=index, name=entry.name, error=exc))
    if problems:
        return problems
    names = [attack.name for attack in make_cascade(params, seed=seed)]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        problems.append(MSG_DUPLICATE_ATTACK.format(names=", ".join(repr(n) for n in twice)))
    return problems


def _readme(
    spec: TaskSpec,
    params: RobustnessParams,
    *,
    input_shape: tuple[int, ...],
    n_train: int,
    n_classes: int,
    baseline_acc: float,
) -> str:
    deadline = spec.deadline.isoformat() if spec.deadline else "none"
    architectures = "\n".join(
        f"- `{choice.name}`: architecture `{choice.registry_name}`"
        + (f" with arguments `{choice.arguments}`" if choice.arguments else "")
        for choice in params.architectures
    )
    attacks = "\n".join(
        f"{i + 1}. `{entry.name}`" + (f" with options `{entry.options}`" if entry.options else "")
        for i, entry in enumerate(params.attacks)
    )
    shape = ", ".join(str(d) for d in input_shape)
    return f"""# {spec.title}

Task id: `{spec.id}` (kind `robustness`), deadline: {deadline}.

{spec.description}

## Threat model
Every evaluation input may be perturbed by an attacker within an {params.norm} ball of radius
eps = {params.eps:g} around it, staying inside the valid pixel range [0, 1]. The attacker knows
your weights (white box).

## Input format
Your model receives float32 tensors of shape (batch, {shape}) with pixel values in [0, 1],
exactly as in `train.npz`, and must return logits of shape (batch, {n_classes}). Do any
normalisation inside the model.

## Files
- `train.npz`: `x`, `y` ({n_train} training examples of `{spec.dataset}`).
- `sample_submission.safetensors`: a normally trained baseline of `{params.architectures[0].name}`
  (clean accuracy {baseline_acc:.3f} on the hidden set); a valid submission, and a starting point.

## Submission
Upload weights (safetensors, or a `.pt` state dict saved with `torch.save(model.state_dict())`)
and set the form field `model_name` to one of:

{architectures}

The weights must fit the architecture exactly (same parameter names and shapes).

## Scoring
1. Clean accuracy on the hidden evaluation set ({params.n_eval} examples) must be at least
   {params.clean_floor:g}, or the submission fails with its accuracy.
2. These attacks run one after the other, each on the examples every earlier attack failed on;
   an example counts as robust only if it is classified correctly and every attack fails:

{attacks}

3. Score = {params.weights.clean:g} x clean accuracy + {params.weights.robust:g} x robust
   accuracy, on the public part ({spec.public_fraction:.0%} of the hidden set) until the deadline
   and on the private part after it. Sanity checks of the evaluation (gradient masking,
   randomness) are shown with your result.
"""

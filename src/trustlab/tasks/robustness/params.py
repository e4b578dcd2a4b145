"""The spec parameters of the ``robustness`` kind and the attack cascade they describe."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trustlab.core.errors import ConfigurationError, TrustlabError
from trustlab.robustness import Attack, Norm, get_attack, make_attack
from trustlab.robustness.autoattack import RAND_ATTACKS, STANDARD_ATTACKS
from trustlab.tasks.model_submission import ArchitectureChoice

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


def default_architectures() -> list[ArchitectureChoice]:
    """The architectures a spec that lists none accepts: ``digits-cnn``."""
    return [ArchitectureChoice(name="digits-cnn")]


class RobustnessParams(BaseModel):
    """Parameters of a robustness task (the spec's ``params``)."""

    model_config = ConfigDict(extra="forbid")

    architectures: list[ArchitectureChoice] = Field(
        default_factory=default_architectures, min_length=1
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
    data_file: str | None = None
    model_file: str | None = None


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


def attack_problems(params: RobustnessParams, *, seed: int) -> list[str]:
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

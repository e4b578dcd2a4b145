"""The spec parameters of the ``membership-defence`` kind."""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trustlab.tasks.model_submission import ArchitectureChoice

#: The attacks a task may run: the membership attacks that use the task's reference models.
DEFENCE_ATTACKS = ("lira", "rmia")
#: Options the task sets for every attack (its reference models and population samples).
RESERVED_OPTIONS = ("reference", "population_x", "population_y")

MSG_ATTACK_RESERVED = (
    "field 'params.attacks[{index}].options': do not set {key!r}; the task passes its own "
    "reference models and population samples"
)
MSG_ATTACK_OPTION = (
    "field 'params.attacks[{index}].options': attack {name!r} has no option {key!r}; it "
    "accepts {accepted}"
)
MSG_DUPLICATE_ATTACK = "field 'params.attacks': {name!r} is listed twice; list each attack once"


class DefenceAttack(BaseModel):
    """One attack run against every submission: ``lira`` or ``rmia`` with its options."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["lira", "rmia"]
    options: dict[str, Any] = Field(default_factory=dict)


class ReferenceRecipe(BaseModel):
    """How the server trains its reference models (and the sample submission), once."""

    model_config = ConfigDict(extra="forbid")

    n_models: int = Field(default=8, ge=2, le=256)
    epochs: int = Field(default=30, ge=1, le=1000)
    lr: float = Field(default=1e-3, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    weight_decay: float = Field(default=0.0, ge=0.0)


def _default_attacks() -> list[DefenceAttack]:
    """Online LiRA with a global variance (better with few reference models), and RMIA."""
    return [
        DefenceAttack(name="lira", options={"online": True, "fixed_variance": True}),
        DefenceAttack(name="rmia"),
    ]


def default_architectures() -> list[ArchitectureChoice]:
    """The architectures a spec that lists none accepts: ``digits-cnn``."""
    return [ArchitectureChoice(name="digits-cnn")]


class DefenceParams(BaseModel):
    """Parameters of a membership-defence task (the spec's ``params``).

    ``n_train`` rows are published for training; ``n_test`` hidden rows measure accuracy and
    serve as the non-members of the attacks; the rest of the data set (at least
    ``n_population_min`` rows) are RMIA's population samples. ``leakage`` is the largest TPR
    at FPR ``fpr`` of the attacks; ``score = accuracy - penalty * max(0, leakage -
    leakage_bound)``.
    """

    model_config = ConfigDict(extra="forbid")

    architectures: list[ArchitectureChoice] = Field(
        default_factory=default_architectures, min_length=1
    )
    n_train: int = Field(default=500, ge=20)
    n_test: int = Field(default=600, ge=20)
    n_population_min: int = Field(default=100, ge=10)
    reference: ReferenceRecipe = Field(default_factory=ReferenceRecipe)
    attacks: list[DefenceAttack] = Field(default_factory=_default_attacks, min_length=1)
    fpr: float = Field(default=0.01, gt=0.0, lt=1.0)
    leakage_bound: float = Field(default=0.02, ge=0.0, le=1.0)
    penalty: float = Field(default=2.0, ge=0.0)
    batch_size: int = Field(default=512, ge=1)
    bootstrap_resamples: int = Field(default=200, ge=0)
    data_file: str | None = None


def attack_problems(params: DefenceParams) -> list[str]:
    """Spec problems of the attack list: duplicates, reserved or unknown options."""
    from trustlab.privacy import MEMBERSHIP_ATTACKS

    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(params.attacks):
        if entry.name in seen:
            problems.append(MSG_DUPLICATE_ATTACK.format(name=entry.name))
        seen.add(entry.name)
        accepted = [
            name
            for name in inspect.signature(MEMBERSHIP_ATTACKS.get(entry.name)).parameters
            if name not in RESERVED_OPTIONS
        ]
        for key in entry.options:
            if key in RESERVED_OPTIONS:
                problems.append(MSG_ATTACK_RESERVED.format(index=index, key=key))
            elif key not in accepted:
                problems.append(
                    MSG_ATTACK_OPTION.format(
                        index=index, name=entry.name, key=key, accepted=", ".join(accepted)
                    )
                )
    return problems

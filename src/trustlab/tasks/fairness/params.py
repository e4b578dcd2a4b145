"""The spec parameters of the ``fairness`` kind (a task spec's ``params``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trustlab.core.data.adult import ADULT_DROPPED, ADULT_SCHEMA
from trustlab.tasks.model_submission import ArchitectureChoice

Attribute = Literal["sex", "race", "age"]
Criterion = Literal["demographic_parity", "equalized_odds"]

#: The data sets a fairness task can be built on, and the attributes each one offers.
DATASET_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "adult": ("sex", "race", "age"),
    "compas": ("race", "sex", "age"),
    "german": ("sex", "age"),
}
#: How the criteria are named in words and in the metrics.
CRITERION_WORDS = {"demographic_parity": "demographic-parity", "equalized_odds": "equalized-odds"}
CRITERION_METRIC = {"demographic_parity": "dp_gap", "equalized_odds": "eo_gap"}
#: Architectures whose ``in_features`` the task fills in from its data.
FILLED_ARCHITECTURES = ("mlp", "tabular")

#: Slack allowed on ``dp_gap <= gap_bound`` for rounding in the rates.
GAP_TOLERANCE = 1e-12

MSG_DUPLICATE_ATTRIBUTE = "names {name!r} twice; list each attribute once"


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
    """How the score falls once the task's gap (demographic parity or equalized odds) exceeds
    the task's bound.

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

    def describe(self, *, bound: float, criterion: str = "demographic_parity") -> str:
        """The rule in words, for the task's page and README."""
        words = CRITERION_WORDS[criterion]
        if self.kind == "zero":
            return f"score = accuracy if the {words} gap is at most {bound:g}, and 0 otherwise"
        return (
            f"score = accuracy - {self.slope:g} x max(0, {words} gap - {bound:g}): "
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

    ``criterion`` is the gap the score is penalised for: ``demographic_parity`` (``dp_gap``) or
    ``equalized_odds`` (``eo_gap``). An ``mlp`` or ``tabular`` entry of ``architectures``
    without ``in_features`` gets the feature count of the task's data set when the kind reads
    the parameters (:meth:`with_features`; 89 for Adult with the sensitive columns kept).
    """

    model_config = ConfigDict(extra="forbid")

    sensitive: list[Attribute] = Field(default_factory=_default_sensitive, min_length=1)
    include_sensitive_in_features: bool = True
    criterion: Criterion = "demographic_parity"
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

    def with_features(self, n_features: int) -> FairnessParams:
        """A copy whose ``mlp`` and ``tabular`` entries without ``in_features`` get it."""
        filled = []
        for choice in self.architectures:
            if (
                choice.registry_name in FILLED_ARCHITECTURES
                and "in_features" not in choice.arguments
            ):
                choice = choice.model_copy(
                    update={"arguments": {**choice.arguments, "in_features": n_features}}
                )
            filled.append(choice)
        return self.model_copy(update={"architectures": filled})

    @property
    def gap_metric(self) -> str:
        """The metric of the scored gap: ``dp_gap`` or ``eo_gap``."""
        return CRITERION_METRIC[self.criterion]

    @property
    def attributes(self) -> list[str]:
        """The sensitive attributes, in the spec's order."""
        return [str(name) for name in self.sensitive]

    def baseline_choice(self) -> ArchitectureChoice:
        name = self.baseline.architecture or self.architectures[0].name
        return next(c for c in self.architectures if c.name == name)

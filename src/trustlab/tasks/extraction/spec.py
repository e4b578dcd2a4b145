"""The spec parameters of the ``model-extraction`` kind (a task spec's ``params``)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trustlab.tasks.base import RateLimit
from trustlab.tasks.model_submission import ArchitectureChoice
from trustlab.tasks.onnx_submission import ONNX_CHOICE

OUTPUT_MODES = ("labels", "top-k", "probabilities", "embeddings")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoundingDefenceSpec(_Strict):
    """Round every output to ``decimals`` decimals (Tramèr et al., 2016)."""

    name: Literal["rounding"]
    decimals: int = Field(default=2, ge=0, le=8)


class TopKDefenceSpec(_Strict):
    """Answer only the ``k`` largest probabilities (the others become 0)."""

    name: Literal["top-k"]
    k: int = Field(default=1, ge=1)
    renormalise: bool = False


class NoiseDefenceSpec(_Strict):
    """Add Gaussian noise of standard deviation ``scale`` to the outputs."""

    name: Literal["noise"]
    scale: float = Field(gt=0.0, allow_inf_nan=False)
    seed: int = Field(default=0, ge=0)


class ReverseSigmoidDefenceSpec(_Strict):
    """The reverse-sigmoid perturbation of Lee et al. (S&P Workshops 2019)."""

    name: Literal["reverse-sigmoid"]
    beta: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    gamma: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)


class EmbeddingTransformDefenceSpec(_Strict):
    """A secret per-client transformation of embeddings (``embeddings`` output only)."""

    name: Literal["embedding-transform"]
    secret: str = Field(min_length=1)
    dim: int | None = Field(default=None, ge=1)


DefenceSpec = Annotated[
    RoundingDefenceSpec
    | TopKDefenceSpec
    | NoiseDefenceSpec
    | ReverseSigmoidDefenceSpec
    | EmbeddingTransformDefenceSpec,
    Field(discriminator="name"),
]


class DetectorSpec(_Strict):
    """An extraction detector run over each team's query stream.

    ``action`` decides what a flagged team gets: ``flag`` (default) keeps answering and only
    records the flag for the staff; ``refuse`` refuses the batch that raised the flag (its
    queries are given back) and every later query with 403.
    """

    name: Literal["prada"]
    threshold: float = Field(default=0.9, gt=0.0, le=1.0)
    min_queries: int = Field(default=100, ge=3)
    action: Literal["flag", "refuse"] = "flag"


class ExtractionParams(_Strict):
    """Parameters of a model-extraction task (the spec's ``params``)."""

    victim: str = "digits-cnn"
    victim_arguments: dict[str, Any] = Field(default_factory=dict)
    n_train: int = Field(default=900, ge=10)
    n_eval: int = Field(default=400, ge=10)
    n_pool: int | None = Field(default=None, ge=1)
    epochs: int = Field(default=10, ge=1, le=10_000)
    lr: float = Field(default=1e-3, gt=0.0)
    batch_size: int = Field(default=32, ge=1)
    weight_decay: float = Field(default=0.0, ge=0.0)
    data_file: str | None = None
    model_file: str | None = None
    output: Literal["labels", "top-k", "probabilities", "embeddings"] = "probabilities"
    top_k: int = Field(default=3, ge=1)
    defence: DefenceSpec | None = None
    detector: DetectorSpec | None = None
    query_budget: int = Field(default=2000, ge=1)
    max_batch: int = Field(default=256, ge=1)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    input_range: tuple[float, float] | None = None
    architectures: list[ArchitectureChoice] = Field(min_length=1)
    accept_onnx: bool = True
    bootstrap_resamples: int = Field(default=200, ge=0)

    @field_validator("input_range")
    @classmethod
    def _range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None:
            low, high = value
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"must be [low, high] with finite low < high; got {list(value)}")
        return value

    @model_validator(mode="after")
    def _onnx_name(self) -> ExtractionParams:
        if self.accept_onnx and any(c.name == ONNX_CHOICE for c in self.architectures):
            raise ValueError(
                f"the architecture name {ONNX_CHOICE!r} is reserved for ONNX submissions; "
                "rename that entry"
            )
        return self

    @property
    def is_classifier(self) -> bool:
        return self.output != "embeddings"

"""Parameters of a ``conformal`` task (the spec's ``params``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ConformalParams(BaseModel):
    """Parameters of a conformal-prediction task.

    ``alpha`` is the target miscoverage: sets must contain the true label of at least
    ``1 - alpha - tolerance`` of each part's test examples, else the part scores zero.
    """

    model_config = ConfigDict(extra="forbid")

    architecture: str = "digits-cnn"
    architecture_arguments: dict[str, Any] = Field(default_factory=dict)
    n_train: int = Field(default=200, ge=10)
    n_calibration: int = Field(default=500, ge=10)
    n_test: int = Field(default=900, ge=10)
    epochs: int = Field(default=10, ge=1, le=10_000)
    lr: float = Field(default=1e-3, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    tolerance: float = Field(default=0.03, ge=0.0, lt=1.0)
    bootstrap_resamples: int = Field(default=200, ge=0)

    @model_validator(mode="after")
    def _bound(self) -> ConformalParams:
        if self.alpha + self.tolerance >= 1.0:
            raise ValueError("alpha + tolerance must be below 1 (the coverage floor is 1 - both)")
        return self

    @property
    def coverage_floor(self) -> float:
        return 1.0 - self.alpha - self.tolerance

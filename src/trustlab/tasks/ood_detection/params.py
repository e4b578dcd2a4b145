"""Parameters of an ``ood-detection`` task (the spec's ``params``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class OODParams(BaseModel):
    """Parameters of an OOD-detection task.

    The model is trained on the ``in_classes`` of the data set; the test set mixes held-out
    in-distribution examples with out-of-distribution ones: examples of the other classes and
    synthetic inputs built from the seed (smoothed noise and random strokes).
    """

    model_config = ConfigDict(extra="forbid")

    architecture: str = "digits-cnn"
    architecture_arguments: dict[str, Any] = Field(default_factory=dict)
    in_classes: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5], min_length=2)
    n_train: int = Field(default=500, ge=10)
    n_test_in: int = Field(default=300, ge=10)
    n_test_ood_classes: int = Field(default=200, ge=0)
    n_test_synthetic: int = Field(default=100, ge=0)
    epochs: int = Field(default=15, ge=1, le=10_000)
    lr: float = Field(default=1e-3, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    tpr: float = Field(default=0.95, gt=0.0, lt=1.0)
    bootstrap_resamples: int = Field(default=200, ge=0)

    @field_validator("in_classes")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value) or min(value) < 0:
            raise ValueError(f"must be distinct class codes >= 0; got {value}")
        return sorted(value)

    @property
    def n_test_ood(self) -> int:
        return self.n_test_ood_classes + self.n_test_synthetic

"""The spec parameters of the ``explanation`` kind."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: The data set an explanation task is built on (its masks are known).
CANVAS_DATASET = "digits-canvas"


class CanvasOptions(BaseModel):
    """How the digits are drawn (:func:`trustlab.core.data.digits_canvas.make_digits_canvas`)."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(default=24, ge=12, le=128)
    noise: float = Field(default=0.35, ge=0.0, le=1.0)
    spurious: float = Field(default=0.0, ge=0.0, le=1.0)


class ExplanationParams(BaseModel):
    """Parameters of an explanation task (the spec's ``params``).

    The served model (``architecture``, trained ``epochs`` with Adam at ``lr``) classifies
    digits drawn on noisy canvases; teams explain its prediction on ``n_explain`` test
    canvases. ``score`` is the mean of the pointing-game hit rate and the relevance-mass
    accuracy against the hidden digit boxes; ``deletion_auc`` (``deletion_steps`` steps) is
    reported beside it.
    """

    model_config = ConfigDict(extra="forbid")

    canvas: CanvasOptions = Field(default_factory=CanvasOptions)
    architecture: str = "canvas-cnn"
    architecture_arguments: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(default=16, ge=1, le=1000)
    lr: float = Field(default=3e-3, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    n_explain: int = Field(default=200, ge=10, le=5000)
    tolerance: int = Field(default=0, ge=0)
    deletion_steps: int = Field(default=16, ge=2, le=1000)
    bootstrap_resamples: int = Field(default=200, ge=0)
    reference_methods: list[str] = Field(
        default_factory=lambda: ["grad_cam", "integrated_gradients"]
    )

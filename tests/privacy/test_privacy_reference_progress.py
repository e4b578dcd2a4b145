"""ReferenceModels.train reports through trustlab.core.progress."""

from __future__ import annotations

import pytest
import torch

from trustlab.core.progress import ProgressEvent
from trustlab.privacy import ReferenceModels


@pytest.mark.parametrize(("vectorise", "stage", "total"), [(False, "model", 2), (True, "epoch", 3)])
def test_reference_training_reports_models_or_epochs(
    vectorise: bool, stage: str, total: int
) -> None:
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    events: list[ProgressEvent] = []
    ReferenceModels.train(
        architecture="mlp",
        arguments={"in_features": 2, "hidden": [4]},
        x=x,
        y=(x[:, 0] > 0).long(),
        n_models=2,
        epochs=3,
        batch_size=8,
        vectorise=vectorise,
        progress=events.append,
    )
    assert [(e.stage, e.done, e.total) for e in events] == [
        (stage, i, total) for i in range(1, total + 1)
    ]

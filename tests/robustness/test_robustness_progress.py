"""Evasion attacks report their progress through trustlab.core.progress."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trustlab.core.progress import ProgressEvent
from trustlab.robustness import PGD


def _linear() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x = torch.rand(10, 4, generator=torch.Generator().manual_seed(0))
    return model, x, model(x).argmax(dim=1).detach()


def test_generate_reports_the_examples_attacked_after_each_batch() -> None:
    model, x, y = _linear()
    events: list[ProgressEvent] = []
    PGD(eps=0.1, steps=2).generate(model=model, x=x, y=y, batch_size=4, progress=events.append)
    assert [(e.stage, e.done, e.total) for e in events] == [
        ("examples", 4, 10),
        ("examples", 8, 10),
        ("examples", 10, 10),
    ]


def test_generate_keeps_the_old_done_total_shape_with_a_warning() -> None:
    model, x, y = _linear()
    seen: list[tuple[int, int]] = []
    with pytest.warns(FutureWarning, match="PGD called a progress callback"):
        PGD(eps=0.1, steps=2).generate(
            model=model, x=x, y=y, batch_size=6, progress=lambda d, t: seen.append((d, t))
        )
    assert seen == [(6, 10), (10, 10)]

"""The Rich bar of the command line and the examples, fed by trustlab.core.progress events."""

from __future__ import annotations

import io

import torch
from rich.console import Console

from trustlab.cli._progress import progress_bar
from trustlab.core.models import build_model
from trustlab.core.progress import report
from trustlab.core.training import fit_classifier


def test_one_bar_per_stage_with_counts_and_metrics() -> None:
    stream = io.StringIO()
    console = Console(file=stream, width=120, force_terminal=False)
    with progress_bar("reference models", console=console) as progress:
        for done in (1, 2, 3):
            report(progress, stage="epoch", done=done, total=3, metrics={"loss": 0.25})
        report(progress, stage="models", done=1, total=2)
    text = stream.getvalue()
    assert "reference models: epoch" in text and "3/3" in text and "loss 0.25" in text
    assert "reference models: models" in text and "1/2" in text


def test_a_trainer_draws_its_epochs() -> None:
    stream = io.StringIO()
    console = Console(file=stream, width=120, force_terminal=False)
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": 2, "hidden": [4]})
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    with progress_bar("target", console=console) as progress:
        fit_classifier(model, x, (x[:, 0] > 0).long(), epochs=2, progress=progress)
    assert "target: epoch" in stream.getvalue() and "2/2" in stream.getvalue()

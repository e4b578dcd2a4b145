"""The one progress mechanism: events, the report helper, old call shapes, and its users."""

from __future__ import annotations

import warnings

import pytest
import torch

from trustlab.core.models import build_model
from trustlab.core.progress import (
    ProgressEvent,
    null_progress,
    report,
    resolve_progress,
)
from trustlab.core.training import fit_classifier, train


def test_report_builds_one_event_with_float_metrics() -> None:
    events: list[ProgressEvent] = []
    report(events.append, stage="epoch", done=2, total=4, metrics={"loss": 1})
    (event,) = events
    assert (event.stage, event.done, event.total) == ("epoch", 2, 4)
    assert event.metrics == {"loss": 1.0} and isinstance(event.metrics["loss"], float)
    assert event.fraction == 0.5
    assert event.describe() == "epoch 2/4, loss 1"
    with pytest.raises(TypeError):
        event.metrics["loss"] = 2.0  # type: ignore[index]


def test_unknown_total_and_no_callback() -> None:
    event = ProgressEvent(stage="queries", done=3)
    assert event.fraction is None and event.describe() == "queries 3"
    report(None, stage="queries", done=1)  # nothing to call: no error
    null_progress(event)


def test_new_callbacks_pass_through_and_old_ones_warn_and_still_work() -> None:
    def new(event: ProgressEvent) -> None:
        del event

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_progress(new, owner="x", legacy=lambda f, e: None, arity=2) is new
        assert resolve_progress(None, owner="x", legacy=lambda f, e: None, arity=2) is None
    seen: list[tuple[int, int | None]] = []
    with pytest.warns(FutureWarning, match="deprecated in 0.2 and will be removed in 0.4"):
        adapted = resolve_progress(
            lambda done, total: seen.append((done, total)),
            owner="x",
            legacy=lambda f, e: f(e.done, e.total),
            arity=2,
        )
    assert adapted is not None
    adapted(ProgressEvent(stage="s", done=1, total=2))
    assert seen == [(1, 2)]


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long()


def test_train_reports_each_epoch_with_its_loss() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": 2, "hidden": [4]})
    x, y = _data()
    events: list[ProgressEvent] = []
    history = train(
        model, data={"x": x, "y": y}, epochs=3, batch_size=16, seed=0, progress=events.append
    )
    assert [(e.stage, e.done, e.total) for e in events] == [("epoch", i, 3) for i in (1, 2, 3)]
    assert [e.metrics["loss"] for e in events] == history.losses


def test_fit_classifier_keeps_the_old_epoch_loss_shape_with_a_warning() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": 2, "hidden": [4]})
    x, y = _data()
    seen: list[tuple[int, float]] = []
    with pytest.warns(FutureWarning, match="fit_classifier"):
        losses = fit_classifier(
            model, x, y, epochs=2, batch_size=16, progress=lambda e, loss: seen.append((e, loss))
        )
    assert seen == list(enumerate(losses, start=1))

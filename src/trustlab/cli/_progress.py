"""A Rich progress bar fed by :mod:`trustlab.core.progress` events (command line and examples).

>>> from trustlab.core.training import fit_classifier
>>> with progress_bar("training") as progress:  # doctest: +SKIP
...     fit_classifier(model, x, y, epochs=10, progress=progress)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trustlab.core.progress import ProgressCallback, ProgressEvent

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(
    description: str, *, console: Console | None = None, transient: bool = False
) -> Iterator[ProgressCallback]:
    """A progress callback that draws one Rich bar per stage while the block runs.

    Each new ``event.stage`` opens a bar named ``"<description>: <stage>"``; its metrics
    (e.g. the epoch's loss) are shown beside it. On a console that is not a terminal, Rich
    draws nothing until the block ends, so logs stay clean.
    """
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    bars: dict[str, TaskID] = {}
    with Progress(
        *columns, console=console or Console(stderr=True), transient=transient
    ) as progress:

        def callback(event: ProgressEvent) -> None:
            metrics = "  ".join(f"{name} {value:.4g}" for name, value in event.metrics.items())
            if event.stage not in bars:
                bars[event.stage] = progress.add_task(
                    f"{description}: {event.stage}", total=event.total, metrics=metrics
                )
            progress.update(
                bars[event.stage], completed=event.done, total=event.total, metrics=metrics
            )

        yield callback

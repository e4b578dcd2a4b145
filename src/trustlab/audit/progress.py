"""How a running audit reports its progress: one bar per section, with a time estimate."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["AuditProgress", "RichProgress"]


class AuditProgress(Protocol):
    """Receives the audit's progress; :class:`RichProgress` draws it in a terminal."""

    def start(self, section: str, title: str) -> None:
        """A section starts."""

    def update(self, section: str, done: float, total: float) -> None:
        """A section has done ``done`` of ``total`` units of work."""

    def finish(self, section: str, status: str) -> None:
        """A section ended: "ok", "cached", "not_available" or "failed"."""


class RichProgress:
    """Rich progress bars on stderr, one per section, with elapsed and remaining time.

    Use as a context manager around :func:`trustlab.audit.run`.
    """

    def __init__(self, *, console: Any | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console or Console(stderr=True),
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, section: str, title: str) -> None:
        self._tasks[section] = self._progress.add_task(title, total=1.0, status="")

    def update(self, section: str, done: float, total: float) -> None:
        if section in self._tasks and total > 0:
            self._progress.update(self._tasks[section], completed=done / total, total=1.0)

    def finish(self, section: str, status: str) -> None:
        if section in self._tasks:
            self._progress.update(
                self._tasks[section], completed=1.0, total=1.0, status=status.replace("_", " ")
            )

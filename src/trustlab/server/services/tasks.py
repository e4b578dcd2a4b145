"""Tasks the arena serves: built folders on disk, mirrored into the database."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from trustlab.schemas import (
    Artifact,
    FormFieldInfo,
    PhaseInfo,
    SubmissionRules,
    TaskDetail,
    TaskSummary,
)
from trustlab.server.errors import ApiError
from trustlab.server.models import Task, utcnow
from trustlab.tasks import BuiltTask, find_tasks, open_task
from trustlab.tasks.base import read_manifest

log = logging.getLogger("trustlab.arena")

MSG_NO_TASK = "No task {task_id!r}. GET /api/v1/tasks lists the tasks."
MSG_NO_ARTIFACT = "Task {task_id!r} has no artefact {name!r}; it has: {names}."
MSG_LIMITS_TEXT = (
    "Scoring limit: {cpu} s of CPU time per submission{derivation}{memory}. A submission that "
    "needs more fails with the reason shown, is not retried, and counts as a failed "
    "submission for the cooldown."
)
MSG_DERIVATION = (
    " ({factor:g} x the {reference:.2f} s the reference submission took to score when the "
    "task was built)"
)
MSG_MEMORY_TEXT = ", and {memory} MiB of memory"
MSG_FINAL_TEXT = (
    "Final choice: mark up to {k} submissions as final (POST /api/v1/submissions/ID/select, "
    "or 'trustlab select ID'). After the deadline the private leaderboard ranks your team by "
    "the best private score among its selected submissions, or, if it selected none, by the "
    "private score of its best public submission (Kaggle's rule). Teams whose 95% bootstrap "
    "intervals overlap are ranked as ties."
)
MSG_LADDER_TEXT = (
    "The public score is released by the Ladder (Blum & Hardt 2015), step {step:g}: your "
    "shown score moves only when a submission beats your best by more than {step:g}."
)


class ScoringLimits(BaseModel):
    """Per-task limits of one scoring job, derived when the task is built.

    Read from the ``scoring_limits`` entry of the task's ``manifest.json``; a task without
    one is scored under the settings' ``job_*`` limits. ``cpu_seconds`` is the CPU-time
    limit; ``wall_seconds`` the wall-clock backstop (default: the larger of the settings'
    ``job_wall_seconds`` and twice the CPU limit); ``memory_mb`` the memory limit (never more
    than the settings' ``job_memory_mb``, which the host's memory budget assumes).
    ``reference_cpu_seconds`` and ``factor`` say how ``cpu_seconds`` was derived.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    cpu_seconds: int = Field(ge=1)
    wall_seconds: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=256)
    reference_cpu_seconds: float | None = Field(default=None, ge=0)
    factor: float | None = Field(default=None, gt=0)

    def derivation(self) -> str:
        """The rule behind ``cpu_seconds`` in words, or '' if the task did not record it."""
        if self.reference_cpu_seconds is None or self.factor is None:
            return ""
        return MSG_DERIVATION.format(factor=self.factor, reference=self.reference_cpu_seconds)


def scoring_limits_from(data: Mapping[str, Any] | None, *, task_id: str) -> ScoringLimits | None:
    """The task's own scoring limits from its manifest's ``scoring_limits`` entry; None (and
    a log line) if absent or malformed."""
    if data is None:
        return None
    try:
        return ScoringLimits.model_validate(data)
    except ValidationError as exc:
        log.error("ignoring the scoring limits of task %s: %s", task_id, exc)
        return None


@dataclass(frozen=True)
class ServedTask:
    """A built task with its deadline, as the server sees it."""

    built: BuiltTask

    @property
    def id(self) -> str:
        return self.built.spec.id

    @property
    def deadline(self) -> datetime | None:
        return self.built.spec.deadline

    def is_closed(self, now: datetime) -> bool:
        return self.deadline is not None and now >= self.deadline

    def summary(self) -> TaskSummary:
        return TaskSummary(**self._summary_fields())

    def _summary_fields(self) -> dict[str, object]:
        spec, kind = self.built.spec, self.built.kind
        phase = spec.phase_at(utcnow())
        return {
            "phase": phase.name if phase is not None else None,
            "phases": [
                PhaseInfo(
                    name=p.name,
                    start=p.start,
                    end=p.end,
                    split=p.split,
                    description=p.description,
                    daily_limit=(p.limits or spec.limits).daily,
                    total_limit=(p.limits or spec.limits).total,
                )
                for p in spec.phases
            ],
            "final_selections": spec.final_selections,
            "ladder_step": spec.ladder.step if spec.ladder is not None else None,
            "task_id": spec.id,
            "kind": spec.kind,
            "title": spec.title,
            "deadline": spec.deadline,
            "metric": spec.metric or kind.default_metric(spec),
            "higher_is_better": kind.higher_is_better,
            "public_fraction": spec.public_fraction,
            "submission_rules": SubmissionRules(
                format=kind.submission_format,
                max_file_size=spec.max_file_size,
                cooldown_accepted_seconds=spec.cooldown.accepted,
                cooldown_failed_seconds=spec.cooldown.failed,
                daily_limit=spec.limits.daily,
                total_limit=spec.limits.total,
                form_fields=[
                    FormFieldInfo(
                        name=f.name,
                        description=f.description,
                        choices=list(f.choices),
                        required=f.required,
                    )
                    for f in kind.form_fields_for(spec)
                ],
            ),
        }

    @cached_property
    def scoring_limits(self) -> ScoringLimits | None:
        """The limits the task's build derived for scoring, if it recorded any."""
        try:
            manifest = read_manifest(self.built.paths)
        except (OSError, ValueError):
            return None
        return scoring_limits_from(manifest.get("scoring_limits"), task_id=self.id)

    def description(self) -> str:
        """The spec's description, the kind's scoring rule in words, and the task's own
        scoring limits, each if any."""
        spec = self.built.spec
        limits = self.scoring_limits
        limits_text = ""
        if limits is not None:
            memory = limits.memory_mb
            limits_text = MSG_LIMITS_TEXT.format(
                cpu=limits.cpu_seconds,
                derivation=limits.derivation(),
                memory=MSG_MEMORY_TEXT.format(memory=memory) if memory is not None else "",
            )
        course = MSG_FINAL_TEXT.format(k=spec.final_selections)
        if spec.ladder is not None:
            course += " " + MSG_LADDER_TEXT.format(step=spec.ladder.step)
        parts = (
            spec.description.strip(),
            self.built.kind.rules_text(spec).strip(),
            limits_text,
            course,
        )
        return "\n\n".join(part for part in parts if part)

    def detail(self) -> TaskDetail:
        manifest = read_manifest(self.built.paths)
        return TaskDetail(
            **self._summary_fields(),
            description=self.description(),
            metrics=self.built.kind.metric_names(self.built.spec),
            artifacts=[Artifact(**a) for a in manifest["artifacts"]],
        )

    def artifact_path(self, name: str) -> Path:
        names = [a["name"] for a in read_manifest(self.built.paths)["artifacts"]]
        if name not in names:
            raise ApiError(
                404, MSG_NO_ARTIFACT.format(task_id=self.id, name=name, names=", ".join(names))
            )
        return self.built.paths.public / name


class TaskCatalog:
    """The tasks found under the data folder, loaded once and refreshed on demand."""

    def __init__(self, tasks_dir: Path) -> None:
        self.tasks_dir = tasks_dir
        self._tasks: dict[str, ServedTask] = {}
        self._stamps: dict[str, float] = {}

    def refresh(self, session: Session) -> list[ServedTask]:
        """Reload built tasks from disk and upsert their rows."""

        def skip(path: Path, error: Exception) -> None:
            log.error("not serving the task in %s: %s", path, error)

        found = {t.spec.id: ServedTask(t) for t in find_tasks(self.tasks_dir, on_error=skip)}
        for task in found.values():
            row = session.get(Task, task.id)
            spec = task.built.spec
            values = {
                "kind": spec.kind,
                "title": spec.title,
                "spec": spec.model_dump(mode="json"),
                "manifest": read_manifest(task.built.paths),
                "path": str(task.built.paths.root.resolve()),
                "deadline": spec.deadline,
                "updated_at": utcnow(),
            }
            if row is None:
                session.add(Task(id=task.id, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        self._tasks = found
        self._stamps = self._read_stamps()
        return list(found.values())

    def _read_stamps(self) -> dict[str, float]:
        if not self.tasks_dir.is_dir():
            return {}
        stamps = {}
        for spec in self.tasks_dir.glob("*/spec.yaml"):
            try:
                stamps[spec.parent.name] = spec.stat().st_mtime
            except OSError:
                continue
        return stamps

    def changed_on_disk(self) -> bool:
        """Whether a task folder appeared, went away or had its spec edited since loading."""
        return self._read_stamps() != self._stamps

    def all(self) -> list[ServedTask]:
        return [self._tasks[k] for k in sorted(self._tasks)]

    def get(self, task_id: str) -> ServedTask:
        task = self._tasks.get(task_id)
        if task is None:
            raise ApiError(404, MSG_NO_TASK.format(task_id=task_id))
        return task


def task_from_row(session: Session, task_id: str) -> BuiltTask:
    """Open a task from the path its row records (what a worker on another machine uses)."""
    row = session.scalar(select(Task).where(Task.id == task_id))
    if row is None:
        raise ApiError(404, MSG_NO_TASK.format(task_id=task_id))
    return open_task(row.path)

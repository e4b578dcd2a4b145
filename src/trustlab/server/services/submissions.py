"""Submission intake (validate, store, queue) and the team's view of a submission.

Intake order: the deadline (403), the size (413), the cooldown and limits (429), the form
fields (422), the file's contents (400, checked in a limited process), and only then, in one
locked transaction, the rules again, the file moved into place durably and the row inserted.
A request refused at any step leaves no file and no row behind and counts for nothing.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from trustlab.core.errors import InternalJobError, TrustlabError
from trustlab.core.sandbox import Limits, WallClockExceeded, run_limited
from trustlab.schemas import SubmissionInfo, SubmissionStatus
from trustlab.server import storage
from trustlab.server.db import write_session
from trustlab.server.errors import ApiError, overloaded, scrub_paths
from trustlab.server.models import Submission, Team, utcnow
from trustlab.server.services.scores import Shown, shown_scores
from trustlab.server.services.tasks import ServedTask
from trustlab.server.settings import Settings
from trustlab.tasks import validate_submission

log = logging.getLogger("trustlab.arena")

MSG_CLOSED = "Task {task_id!r} closed at its deadline {deadline}; it accepts no more submissions."
MSG_NOT_YET = (
    "Task {task_id!r} is not open yet: its first phase ({phase}) starts at {start}. Try again then."
)
MSG_BETWEEN = (
    "Task {task_id!r} is between phases: {before} ended at {end}; {after} starts at {start}. "
    "Try again then."
)
MSG_TOO_LARGE = (
    "The file is {size} bytes, over this task's limit of {limit} bytes; submit a smaller file."
)
MSG_COOLDOWN = (
    "Cooldown: your team's last submission to {task_id!r} {event} {ago:.0f} s ago and this "
    "task asks for {wait:.0f} s between submissions{after}. Try again in {retry} s."
)
MSG_DAILY = (
    "Daily limit reached: your team has made {count} of its {limit} submissions to "
    "{task_id!r} today (UTC). Try again after midnight UTC, in {retry} s."
)
MSG_TOTAL = (
    "Total limit reached: your team has used all {limit} submissions to {task_id!r}; no more "
    "are accepted."
)
MSG_NO_FILE = "The form has no 'file' part: send the file as multipart field 'file'."
MSG_MISSING_FIELD = "Form field {name!r} is required for task {task_id!r}: {description}"
MSG_BAD_CHOICE = "Form field {name!r} is {value!r}; use one of: {choices}."
MSG_UNKNOWN_FIELD = "Unknown form field {name!r}; this task accepts: {accepted}."
MSG_NO_SUBMISSION = "No submission {submission_id!r} of your team."
WHAT_SLOW_CHECK = (
    "checking your file took over {seconds:g} s of waiting for CPU time, far more than the "
    "check itself needs"
)
MSG_INTAKE_FAILED = (
    "The arena could not check the file because of an internal error; nothing was stored and "
    "nothing counted. Try again later or tell the course staff. ({error})"
)


@dataclass(frozen=True)
class Context:
    """What intake needs from the running arena."""

    settings: Settings
    sessions: sessionmaker[Session]


def check_open(task: ServedTask, now: datetime) -> None:
    """403 after the deadline, or, for a task with phases, when no phase is open."""
    if task.is_closed(now):
        assert task.deadline is not None
        raise ApiError(403, MSG_CLOSED.format(task_id=task.id, deadline=task.deadline.isoformat()))
    phases = task.built.spec.phases
    if not phases or task.built.spec.phase_at(now) is not None:
        return
    upcoming = [p for p in phases if p.start is not None and p.start > now]
    if not upcoming:  # every phase has ended: the deadline rule above normally says so
        raise ApiError(403, MSG_CLOSED.format(task_id=task.id, deadline=phases[-1].end))
    nxt = upcoming[0]
    assert nxt.start is not None
    earlier = [p for p in phases if p.end <= now]
    if not earlier:
        raise ApiError(
            403, MSG_NOT_YET.format(task_id=task.id, phase=nxt.name, start=nxt.start.isoformat())
        )
    raise ApiError(
        403,
        MSG_BETWEEN.format(
            task_id=task.id,
            before=earlier[-1].name,
            end=earlier[-1].end.isoformat(),
            after=nxt.name,
            start=nxt.start.isoformat(),
        ),
    )


@dataclass(frozen=True)
class Rules:
    """The rules in force now: the open phase's where it sets them, else the task's."""

    phase: str | None
    cooldown_accepted: float
    cooldown_failed: float
    daily: int | None
    total: int | None


def rules_now(task: ServedTask, now: datetime) -> Rules:
    spec = task.built.spec
    phase = spec.phase_at(now)
    cooldown = (phase.cooldown if phase is not None else None) or spec.cooldown
    limits = (phase.limits if phase is not None else None) or spec.limits
    return Rules(
        phase=phase.name if phase is not None else None,
        cooldown_accepted=cooldown.accepted,
        cooldown_failed=cooldown.failed,
        daily=limits.daily,
        total=limits.total,
    )


def usage(session: Session, *, task: ServedTask, team: Team, now: datetime) -> tuple[int, int]:
    """Submissions that count against the team's limits now: ``(today, in all)``.

    Failed ones never count; in a phase, only the phase's own count.
    """
    rules = rules_now(task, now)
    counted = (
        (Submission.task_id == task.id)
        & (Submission.team_id == team.id)
        & (Submission.status != SubmissionStatus.FAILED.value)
    )
    if rules.phase is not None:
        counted = counted & (Submission.phase == rules.phase)
    total = session.scalar(select(func.count()).select_from(Submission).where(counted)) or 0
    midnight = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    today = (
        session.scalar(
            select(func.count())
            .select_from(Submission)
            .where(counted & (Submission.created_at >= midnight))
        )
        or 0
    )
    return int(today), int(total)


def check_rules(session: Session, *, task: ServedTask, team: Team, now: datetime) -> None:
    """Raise 429 if the team is in a cooldown or out of submissions for this task."""
    rules = rules_now(task, now)
    mine = (Submission.task_id == task.id) & (Submission.team_id == team.id)
    last = session.scalar(select(Submission).where(mine).order_by(Submission.created_at.desc()))
    if last is not None:
        failed = last.status == SubmissionStatus.FAILED.value
        wait = rules.cooldown_failed if failed else rules.cooldown_accepted
        # A failed submission's cooldown runs from its failure: one that ran to its scoring
        # limit must not leave the team free to send the next one the moment it fails.
        since = last.created_at
        if failed and last.finished_at is not None:
            since = max(since, last.finished_at)
        ready = since + timedelta(seconds=wait)
        if now < ready:
            retry = max(1, math.ceil((ready - now).total_seconds()))
            after = " after a failed one" if failed else ""
            raise ApiError(
                429,
                MSG_COOLDOWN.format(
                    task_id=task.id,
                    event="failed" if failed else "was",
                    ago=(now - since).total_seconds(),
                    wait=wait,
                    after=after,
                    retry=retry,
                ),
                headers={"Retry-After": str(retry)},
            )
    if rules.total is None and rules.daily is None:
        return
    today, total = usage(session, task=task, team=team, now=now)
    if rules.total is not None and total >= rules.total:
        retry = _seconds_until(task.deadline, now) if task.deadline else 86400
        raise ApiError(
            429,
            MSG_TOTAL.format(limit=rules.total, task_id=task.id),
            headers={"Retry-After": str(retry)},
        )
    if rules.daily is not None and today >= rules.daily:
        midnight = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        retry = _seconds_until(midnight + timedelta(days=1), now)
        raise ApiError(
            429,
            MSG_DAILY.format(count=today, limit=rules.daily, task_id=task.id, retry=retry),
            headers={"Retry-After": str(retry)},
        )


def _seconds_until(when: datetime, now: datetime) -> int:
    return max(1, math.ceil((when - now).total_seconds()))


def check_fields(task: ServedTask, fields: Mapping[str, str]) -> dict[str, str]:
    """Validate the form fields a task declares (422 naming the field)."""
    declared = task.built.kind.form_fields_for(task.built.spec)
    names = {f.name for f in declared}
    for name in fields:
        if name not in names:
            accepted = ", ".join(["file", *sorted(names)])
            raise ApiError(422, MSG_UNKNOWN_FIELD.format(name=name, accepted=accepted))
    clean: dict[str, str] = {}
    for spec_field in declared:
        value = fields.get(spec_field.name)
        if value is None or not value.strip():
            if spec_field.required:
                raise ApiError(
                    422,
                    MSG_MISSING_FIELD.format(
                        name=spec_field.name, task_id=task.id, description=spec_field.description
                    ),
                )
            continue
        value = value.strip()
        if spec_field.choices and value not in spec_field.choices:
            raise ApiError(
                422,
                MSG_BAD_CHOICE.format(
                    name=spec_field.name, value=value, choices=", ".join(spec_field.choices)
                ),
            )
        clean[spec_field.name] = value
    return clean


def validate_file(
    ctx: Context,
    *,
    task: ServedTask,
    incoming: storage.Incoming,
    fields: Mapping[str, str],
    filename: str = "the file",
) -> dict[str, object]:
    """Run the kind's validation in a limited process; 400 with its message on failure.

    The check's work is bounded by CPU time (``intake_cpu_seconds``, the file's fault when
    used up: 400); the wall-clock backstop (``intake_wall_seconds``) is only hit when the
    machine is too busy to give the check its CPU time, so it answers 503, blaming no one.
    Messages never show the server's paths.
    """
    settings = ctx.settings
    limits = Limits(
        memory_mb=settings.intake_memory,
        cpu_seconds=settings.intake_cpu_seconds,
        wall_seconds=settings.intake_wall_seconds,
    )
    known = {
        str(incoming.path): repr(filename),
        str(task.built.paths.root.resolve()): repr(task.id),
        str(task.built.paths.root): repr(task.id),
    }
    try:
        summary = run_limited(
            validate_submission,
            args=(
                str(task.built.paths.root),
                str(incoming.path),
                dict(fields),
                list(settings.plugins),
            ),
            limits=limits,
        )
    except WallClockExceeded as exc:
        cpu = "?" if exc.cpu_seconds is None else f"{exc.cpu_seconds:.1f}"
        log.warning(
            "checking a file for task %s outlasted the %g s backstop after %s s of CPU time",
            task.id,
            limits.wall_seconds,
            cpu,
        )
        raise overloaded(
            WHAT_SLOW_CHECK.format(seconds=limits.wall_seconds),
            retry=settings.retry_after_seconds,
        ) from None
    except InternalJobError as exc:
        log.error("checking a file for task %s failed: %s", task.id, exc)
        error = scrub_paths(str(exc), known=known)
        raise ApiError(500, MSG_INTAKE_FAILED.format(error=error)) from None
    except TrustlabError as exc:
        status = exc.status_code if exc.status_code in (400, 422) else 400
        raise ApiError(status, scrub_paths(str(exc), known=known)) from None
    return dict(summary or {})


def store(
    ctx: Context,
    *,
    task: ServedTask,
    team: Team,
    incoming: storage.Incoming,
    filename: str,
    fields: Mapping[str, str],
    summary: Mapping[str, object],
) -> Submission:
    """Re-check the rules under a lock, move the file into place and insert the row."""
    submission_id = uuid.uuid4().hex
    relative = f"{task.id}/{submission_id}/file{storage.safe_suffix(filename)}"
    root = ctx.settings.submissions_dir
    final = None
    storage.flush(incoming)
    try:
        with write_session(ctx.sessions) as session:
            locked = session.scalar(select(Team).where(Team.id == team.id).with_for_update())
            assert locked is not None
            now = utcnow()
            check_open(task, now)
            check_rules(session, task=task, team=locked, now=now)
            final = storage.commit_file(incoming, root=root, relative=relative)
            row = Submission(
                id=submission_id,
                task_id=task.id,
                team_id=team.id,
                created_at=now,
                status=SubmissionStatus.QUEUED.value,
                filename=filename[:255],
                path=relative,
                size=incoming.size,
                sha256=incoming.sha256,
                fields=dict(fields),
                summary=dict(summary),
                attempts=0,
                phase=rules_now(task, now).phase,
            )
            session.add(row)
    except BaseException:
        if final is not None:
            storage.discard(final)
        raise
    return row


def _info(
    row: Submission, *, team: Team, task: ServedTask | None, now: datetime, shown: Shown | None
) -> SubmissionInfo:
    final = task is not None and task.is_closed(now)
    notes = list(row.notes or [])
    public_score, metrics = row.public_score, dict(row.public_metrics or {})
    if shown is not None:
        public_score, metrics = shown.public_score, shown.metrics
        if shown.note:
            notes.append(shown.note)
    return SubmissionInfo(
        submission_id=row.id,
        task_id=row.task_id,
        team=team.name,
        status=SubmissionStatus(row.status),
        created_at=row.created_at,
        finished_at=row.finished_at,
        public_score=public_score,
        metrics=metrics,
        private_score=row.private_score if final else None,
        private_metrics=row.private_metrics if final else None,
        notes=notes,
        error=row.error,
        phase=row.phase,
        selected=bool(row.selected),
        score_version=row.score_version or 0,
    )


def team_submissions(
    session: Session,
    *,
    team: Team,
    tasks: Mapping[str, ServedTask],
    now: datetime,
    task_id: str | None = None,
) -> list[SubmissionInfo]:
    """Every submission of the team (to one task with ``task_id``), newest first, as the team
    may see it now (blind phases and the Ladder applied)."""
    query = select(Submission).where(Submission.team_id == team.id)
    if task_id is not None:
        query = query.where(Submission.task_id == task_id)
    rows = list(session.scalars(query.order_by(Submission.created_at.desc(), Submission.id)))
    shown: dict[str, Shown] = {}
    for tid in {r.task_id for r in rows}:
        if tid in tasks:
            shown.update(shown_scores(tasks[tid], [r for r in rows if r.task_id == tid], now))
    return [
        _info(r, team=team, task=tasks.get(r.task_id), now=now, shown=shown.get(r.id)) for r in rows
    ]


def submission_info(
    session: Session, *, submission_id: str, team: Team, task: ServedTask | None, now: datetime
) -> SubmissionInfo:
    row = session.get(Submission, submission_id)
    if row is None or row.team_id != team.id:
        raise ApiError(404, MSG_NO_SUBMISSION.format(submission_id=submission_id))
    shown = None
    if task is not None:
        siblings = list(
            session.scalars(
                select(Submission).where(
                    (Submission.task_id == row.task_id) & (Submission.team_id == team.id)
                )
            )
        )
        shown = shown_scores(task, siblings, now).get(row.id)
    return _info(row, team=team, task=task, now=now, shown=shown)

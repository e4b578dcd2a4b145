"""The job queue of submissions, kept in the database.

A worker *claims* a queued submission (or one whose lease ran out because its worker died) by
setting ``status='running'``, a fresh ``claim_token`` and a lease. While it scores it renews
the lease. It finishes with an update that only succeeds if the row still carries its token:
if the lease expired and another worker claimed the job meanwhile, the late result is
discarded. So a job lost with a dead worker is picked up again, and no job is ever scored
twice into the database.

Jobs are claimed round-robin across teams: the next job is the oldest runnable one of the
team served least recently (whose latest job started longest ago, or never). A team's backlog,
or a submission that runs to its time limit, so delays another team's next job by at most
one job per worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from trustlab.schemas import SubmissionStatus
from trustlab.server.db import write_session
from trustlab.server.models import Submission, SubmissionScore, Task, utcnow

MSG_GAVE_UP = (
    "Scoring did not finish after {attempts} attempts (last: {error}); the submission was "
    "not counted. Contact the course staff if it keeps happening."
)

QUEUED = SubmissionStatus.QUEUED.value
RUNNING = SubmissionStatus.RUNNING.value
SCORED = SubmissionStatus.SCORED.value
FAILED = SubmissionStatus.FAILED.value


@dataclass(frozen=True)
class Claim:
    submission_id: str
    token: str
    task_id: str
    task_path: str
    file: str
    fields: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    scoring_limits: dict[str, Any] | None = None


class LostClaim(Exception):
    """The job was taken over by another worker (our lease expired)."""


def _runnable(now: datetime) -> Any:
    return or_(
        Submission.status == QUEUED,
        and_(Submission.status == RUNNING, Submission.lease_expires_at < now),
    )


def _take(
    session: Session, row: Submission, *, worker: str, lease_seconds: float, max_attempts: int
) -> Claim | None:
    """Claim a locked runnable row; None (and the row failed) once it ran out of attempts."""
    now = utcnow()
    if row.attempts >= max_attempts:
        row.status = FAILED
        row.error = MSG_GAVE_UP.format(
            attempts=row.attempts, error=row.error or "the worker stopped"
        )
        row.claim_token = None
        row.finished_at = now
        return None
    task = session.get(Task, row.task_id)
    assert task is not None
    token = uuid.uuid4().hex
    row.status = RUNNING
    row.claim_token = token
    row.attempts += 1
    row.worker = worker
    row.started_at = now
    row.lease_expires_at = now + timedelta(seconds=lease_seconds)
    return Claim(
        submission_id=row.id,
        token=token,
        task_id=row.task_id,
        task_path=task.path,
        file=row.path,
        fields=dict(row.fields or {}),
        attempt=row.attempts,
        scoring_limits=(task.manifest or {}).get("scoring_limits"),
    )


def _last_served() -> Any:
    """When the team of the outer row last had a job started (NULL if never)."""
    other = aliased(Submission)
    return (
        select(func.max(other.started_at))
        .where(other.team_id == Submission.team_id)
        .correlate(Submission)
        .scalar_subquery()
    )


def claim_next(
    sessions: sessionmaker[Session],
    *,
    worker: str,
    lease_seconds: float,
    max_attempts: int,
    skip_tasks: Collection[str] = (),
    prefer_tasks: Collection[str] = (),
) -> Claim | None:
    """Claim the next runnable submission in round-robin order across teams (the oldest job
    of the team served least recently), or return None when there is none.

    Jobs of ``skip_tasks`` are left alone (a worker without a GPU skips GPU-only tasks);
    jobs of ``prefer_tasks`` come first (a GPU worker takes GPU-only jobs before others).
    """
    while True:
        with write_session(sessions) as session:
            query = select(Submission).where(_runnable(utcnow()))
            if skip_tasks:
                query = query.where(Submission.task_id.not_in(list(skip_tasks)))
            order: list[Any] = []
            if prefer_tasks:
                order.append(case((Submission.task_id.in_(list(prefer_tasks)), 0), else_=1))
            order += [_last_served().asc().nulls_first(), Submission.created_at, Submission.id]
            row = session.scalar(query.order_by(*order).limit(1).with_for_update(skip_locked=True))
            if row is None:
                return None
            claim = _take(
                session, row, worker=worker, lease_seconds=lease_seconds, max_attempts=max_attempts
            )
            if claim is not None:
                return claim


def claim(
    sessions: sessionmaker[Session],
    *,
    submission_id: str,
    worker: str,
    lease_seconds: float,
    max_attempts: int,
) -> Claim | None:
    """Claim one given submission if it is runnable (a broker message names it); else None.

    A duplicate message, or one for a job another worker holds or has finished, claims
    nothing: the database, not the broker, decides who scores what.
    """
    with write_session(sessions) as session:
        row = session.scalar(
            select(Submission)
            .where(Submission.id == submission_id)
            .where(_runnable(utcnow()))
            .with_for_update()
        )
        if row is None:
            return None
        return _take(
            session, row, worker=worker, lease_seconds=lease_seconds, max_attempts=max_attempts
        )


def due_for_dispatch(
    sessions: sessionmaker[Session], *, redispatch_seconds: float, limit: int = 500
) -> list[str]:
    """Submissions a broker should be told about (again), marked as dispatched now.

    That is queued ones never handed over (the broker was down) or handed over more than
    ``redispatch_seconds`` ago without being claimed, and running ones whose lease ran out
    (their worker died).
    """
    with write_session(sessions) as session:
        now = utcnow()
        stale = now - timedelta(seconds=redispatch_seconds)
        due = or_(
            and_(
                Submission.status == QUEUED,
                or_(Submission.dispatched_at.is_(None), Submission.dispatched_at < stale),
            ),
            and_(
                Submission.status == RUNNING,
                Submission.lease_expires_at < now,
                or_(
                    Submission.dispatched_at.is_(None),
                    Submission.dispatched_at < Submission.lease_expires_at,
                ),
            ),
        )
        rows = list(
            session.scalars(
                select(Submission)
                .where(due)
                .order_by(Submission.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            row.dispatched_at = now
        return [row.id for row in rows]


def mark_dispatched(sessions: sessionmaker[Session], submission_id: str) -> None:
    with write_session(sessions) as session:
        session.execute(
            update(Submission).where(Submission.id == submission_id).values(dispatched_at=utcnow())
        )


def _owned(claim: Claim) -> Any:
    return and_(
        Submission.id == claim.submission_id,
        Submission.claim_token == claim.token,
        Submission.status == RUNNING,
    )


def renew(sessions: sessionmaker[Session], claim: Claim, *, lease_seconds: float) -> None:
    """Extend the lease; raises :class:`LostClaim` if the job is no longer ours."""
    with write_session(sessions) as session:
        result = session.execute(
            update(Submission)
            .where(_owned(claim))
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LostClaim(claim.submission_id)


def complete(sessions: sessionmaker[Session], claim: Claim, result: dict[str, Any]) -> bool:
    """Record the scores as the submission's next score version (earlier versions stay in
    ``submission_scores``); False if the job was no longer ours (the result is dropped)."""
    with write_session(sessions) as session:
        row = session.scalar(select(Submission).where(_owned(claim)).with_for_update())
        if row is None:
            return False
        now = utcnow()
        row.score_version = (row.score_version or 0) + 1
        row.status = SCORED
        row.public_score = result["public_score"]
        row.private_score = result["private_score"]
        row.public_metrics = result.get("public_metrics", {})
        row.private_metrics = result.get("private_metrics", {})
        row.notes = result.get("notes", [])
        row.error = None
        row.claim_token = None
        row.lease_expires_at = None
        row.finished_at = now
        session.add(
            SubmissionScore(
                submission_id=row.id,
                version=row.score_version,
                public_score=row.public_score,
                private_score=row.private_score,
                public_metrics=row.public_metrics,
                private_metrics=row.private_metrics,
                worker=row.worker,
                created_at=now,
            )
        )
        return True


def fail(sessions: sessionmaker[Session], claim: Claim, *, error: str, retry: bool) -> bool:
    """Mark the job failed (the submission's fault), or queue it again (``retry``)."""
    values: dict[str, Any] = {"error": error, "claim_token": None, "lease_expires_at": None}
    if retry:
        values["status"] = QUEUED
    else:
        values.update(status=FAILED, finished_at=utcnow())
    with write_session(sessions) as session:
        outcome = session.execute(update(Submission).where(_owned(claim)).values(**values))
        return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]


def release(sessions: sessionmaker[Session], claim: Claim) -> None:
    """Give a job back untouched (a worker shutting down); the attempt does not count."""
    with write_session(sessions) as session:
        session.execute(
            update(Submission)
            .where(_owned(claim))
            .values(
                status=QUEUED,
                claim_token=None,
                lease_expires_at=None,
                attempts=Submission.attempts - 1,
            )
        )

"""Staff tools: the overview page's numbers, grade and history exports, rescoring,
cancelling, and the extraction detector's flags."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from trustlab.core.errors import ConfigurationError, UnknownNameError
from trustlab.schemas import SubmissionStatus
from trustlab.server.db import write_session
from trustlab.server.models import (
    QueryAccount,
    Submission,
    SubmissionScore,
    Team,
    TeamMember,
    WorkerBeat,
    utcnow,
)
from trustlab.server.services.leaderboard import leaderboard, team_choices
from trustlab.server.services.tasks import ServedTask
from trustlab.server.services.workers import list_workers

MSG_NO_SUBMISSION = "No submission {submission_id!r}; 'trustlab admin export TASK' lists them."
MSG_NOT_OF_TASK = "Submission {submission_id!r} belongs to task {actual!r}, not {task_id!r}."
MSG_CANCEL_DONE = "Submission {submission_id!r} is already {status}; nothing to cancel."
MSG_CANCELLED = "Cancelled by the course staff{reason}."
MSG_NOTHING_TO_RESCORE = "Task {task_id!r} has no scored submission to rescore."

QUEUED = SubmissionStatus.QUEUED.value
RUNNING = SubmissionStatus.RUNNING.value
SCORED = SubmissionStatus.SCORED.value
FAILED = SubmissionStatus.FAILED.value

GRADE_COLUMNS = (
    "team",
    "members",
    "emails",
    "rank",
    "tied",
    "submission_id",
    "selected",
    "public_score",
    "private_score",
    "submissions",
)
HISTORY_COLUMNS = (
    "submission_id",
    "task_id",
    "team",
    "created_at",
    "phase",
    "status",
    "selected",
    "score_version",
    "public_score",
    "private_score",
    "error",
    "filename",
    "sha256",
    "scored_at",
)


@dataclass
class Overview:
    """What the staff page shows."""

    queued: int
    running: int
    workers: list[WorkerBeat]
    stale_after: timedelta
    failed: list[tuple[Submission, str]]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: list[tuple[QueryAccount, str]] = field(default_factory=list)


def overview(session: Session, *, stale_seconds: float, failed_limit: int = 50) -> Overview:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for task_id, status, n in session.execute(
        select(Submission.task_id, Submission.status, func.count()).group_by(
            Submission.task_id, Submission.status
        )
    ):
        counts[task_id][status] = int(n)
    failed = session.execute(
        select(Submission, Team.name)
        .join(Team, Team.id == Submission.team_id)
        .where(Submission.status == FAILED)
        .order_by(Submission.finished_at.desc().nulls_last(), Submission.created_at.desc())
        .limit(failed_limit)
    ).all()
    total: dict[str, int] = defaultdict(int)
    for per in counts.values():
        for status, n in per.items():
            total[status] += n
    return Overview(
        queued=total[QUEUED],
        running=total[RUNNING],
        workers=list_workers(session),
        stale_after=timedelta(seconds=stale_seconds),
        failed=[(sub, name) for sub, name in failed],
        counts=dict(counts),
        flags=flags(session),
    )


def flags(session: Session) -> list[tuple[QueryAccount, str]]:
    """Every query account the extraction detector flagged, newest first, with its team."""
    rows = session.execute(
        select(QueryAccount, Team.name)
        .join(Team, Team.id == QueryAccount.team_id)
        .where(QueryAccount.flagged_at.is_not(None))
        .order_by(QueryAccount.flagged_at.desc())
    ).all()
    return [(account, name) for account, name in rows]


def _members(session: Session) -> dict[int, list[TeamMember]]:
    found: dict[int, list[TeamMember]] = defaultdict(list)
    for member in session.scalars(select(TeamMember).order_by(TeamMember.name)):
        found[member.team_id].append(member)
    return found


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def grades_csv(session: Session, *, task: ServedTask, now: datetime | None = None) -> str:
    """One row per team: its final choice's public and private scores (Kaggle's rule, as the
    private leaderboard applies it), its rank, its number of submissions, and its members.

    Before the deadline the ranks and private scores are those the private board would show
    if the deadline were now; teams with no scored submission come last, without a rank.
    """
    now = now or utcnow()
    board = leaderboard(session, task=task, now=now, final=True)
    choices, _ = team_choices(session, task=task, now=now, final=True)
    members = _members(session)
    all_teams = list(session.scalars(select(Team).order_by(Team.name)))
    counts = dict(
        session.execute(
            select(Submission.team_id, func.count())
            .where(Submission.task_id == task.id)
            .group_by(Submission.team_id)
        ).all()
    )
    ranked = {e.team: e for e in board.entries}
    rows = []

    def order(team: Team) -> tuple[int, str]:
        return (ranked[team.name].rank if team.name in ranked else 1 << 30, team.name)

    for team in sorted(all_teams, key=order):
        people = members.get(team.id, [])
        entry = ranked.get(team.name)
        choice = choices.get(team.name)
        rows.append(
            {
                "team": team.name,
                "members": "; ".join(m.name for m in people),
                "emails": "; ".join(m.email or "" for m in people),
                "rank": entry.rank if entry else None,
                "tied": int(entry.tied) if entry else None,
                "submission_id": choice.sub.id if choice else None,
                "selected": int(choice.selected) if choice else None,
                "public_score": choice.public_score if choice else None,
                "private_score": entry.private_score if entry else None,
                "submissions": int(counts.get(team.id, 0)),
            }
        )
    return _csv(GRADE_COLUMNS, rows)


def history_csv(session: Session, *, task_id: str | None = None) -> str:
    """Every submission (of one task, or all) with every score version it had, oldest first."""
    query = (
        select(Submission, Team.name, SubmissionScore)
        .join(Team, Team.id == Submission.team_id)
        .outerjoin(SubmissionScore, SubmissionScore.submission_id == Submission.id)
        .order_by(Submission.created_at, Submission.id, SubmissionScore.version)
    )
    if task_id is not None:
        query = query.where(Submission.task_id == task_id)
    rows = []
    for sub, team, score in session.execute(query).all():
        rows.append(
            {
                "submission_id": sub.id,
                "task_id": sub.task_id,
                "team": team,
                "created_at": sub.created_at.isoformat(),
                "phase": sub.phase,
                "status": sub.status,
                "selected": int(bool(sub.selected)),
                "score_version": score.version if score else None,
                "public_score": score.public_score if score else None,
                "private_score": score.private_score if score else None,
                "error": sub.error,
                "filename": sub.filename,
                "sha256": sub.sha256,
                "scored_at": score.created_at.isoformat() if score else None,
            }
        )
    return _csv(HISTORY_COLUMNS, rows)


def rescore(
    sessions: sessionmaker[Session], *, task_id: str, submission_id: str | None = None
) -> list[str]:
    """Queue scored (or failed) submissions of a task again, e.g. after a scorer fix.

    Their current scores stay until the new ones arrive, and every version stays in the
    history. Returns the ids queued.
    """
    with write_session(sessions) as session:
        query = select(Submission).where(Submission.task_id == task_id)
        if submission_id is not None:
            row = session.get(Submission, submission_id)
            if row is None:
                raise UnknownNameError(MSG_NO_SUBMISSION.format(submission_id=submission_id))
            if row.task_id != task_id:
                raise ConfigurationError(
                    MSG_NOT_OF_TASK.format(
                        submission_id=submission_id, actual=row.task_id, task_id=task_id
                    )
                )
            query = query.where(Submission.id == submission_id)
        else:
            query = query.where(Submission.status == SCORED)
        rows = list(session.scalars(query.with_for_update()))
        rows = [r for r in rows if r.status in (SCORED, FAILED)]
        if not rows and submission_id is None:
            raise ConfigurationError(MSG_NOTHING_TO_RESCORE.format(task_id=task_id))
        ids = [r.id for r in rows]
        if ids:
            session.execute(
                update(Submission)
                .where(Submission.id.in_(ids))
                .values(
                    status=QUEUED,
                    attempts=0,
                    claim_token=None,
                    lease_expires_at=None,
                    dispatched_at=None,
                )
            )
        return ids


def cancel(sessions: sessionmaker[Session], *, submission_id: str, reason: str = "") -> str:
    """Stop a queued or running submission: it becomes failed with the staff's reason.

    A worker scoring it finds its claim gone and drops its result. Returns the old status.
    """
    with write_session(sessions) as session:
        row = session.scalar(
            select(Submission).where(Submission.id == submission_id).with_for_update()
        )
        if row is None:
            raise UnknownNameError(MSG_NO_SUBMISSION.format(submission_id=submission_id))
        if row.status not in (QUEUED, RUNNING):
            raise ConfigurationError(
                MSG_CANCEL_DONE.format(submission_id=submission_id, status=row.status)
            )
        old = row.status
        row.status = FAILED
        row.error = MSG_CANCELLED.format(reason=f": {reason}" if reason else "")
        row.claim_token = None
        row.lease_expires_at = None
        row.finished_at = utcnow()
        return old

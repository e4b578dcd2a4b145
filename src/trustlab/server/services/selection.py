"""Final choices: a team marks up to ``final_selections`` submissions per task as final.

After the deadline the private leaderboard ranks the team by the best private score among its
selected submissions, or by its best public submission where it selected none (see
:mod:`~trustlab.server.services.leaderboard`). Choices can change until the deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from trustlab.schemas import SubmissionStatus
from trustlab.server.db import write_session
from trustlab.server.errors import ApiError
from trustlab.server.models import Submission, Team
from trustlab.server.services.submissions import MSG_NO_SUBMISSION
from trustlab.server.services.tasks import ServedTask

MSG_SELECT_CLOSED = (
    "Task {task_id!r} closed at its deadline {deadline}; final choices can no longer change."
)
MSG_SELECT_FAILED = (
    "Submission {submission_id!r} failed ({error}); only a submission that is queued, running "
    "or scored can be marked as final."
)
MSG_TOO_MANY = (
    "Your team has already marked {k} submissions to {task_id!r} as final ({ids}), the most "
    "this task allows; unselect one first (POST /api/v1/submissions/ID/unselect or "
    "'trustlab unselect ID')."
)


def _own_row(session: Session, *, submission_id: str, team: Team) -> Submission:
    row = session.scalar(select(Submission).where(Submission.id == submission_id).with_for_update())
    if row is None or row.team_id != team.id:
        raise ApiError(404, MSG_NO_SUBMISSION.format(submission_id=submission_id))
    return row


def set_selected(
    sessions: sessionmaker[Session],
    *,
    submission_id: str,
    team: Team,
    get_task: Callable[[str], ServedTask],
    selected: bool,
    now: datetime,
) -> str:
    """Mark (or unmark) one of the team's submissions as final; returns its task id.

    Idempotent. 404 for another team's submission, 403 after the deadline, 409 for a failed
    submission or when the team already has as many final choices as the task allows.
    """
    with write_session(sessions) as session:
        # Lock the team's row: two concurrent selections cannot both pass the count below.
        session.scalar(select(Team).where(Team.id == team.id).with_for_update())
        row = _own_row(session, submission_id=submission_id, team=team)
        task = get_task(row.task_id)
        if task.is_closed(now):
            assert task.deadline is not None
            raise ApiError(
                403,
                MSG_SELECT_CLOSED.format(task_id=task.id, deadline=task.deadline.isoformat()),
            )
        if bool(row.selected) == selected:
            return row.task_id
        if selected:
            if row.status == SubmissionStatus.FAILED.value:
                raise ApiError(
                    409, MSG_SELECT_FAILED.format(submission_id=row.id, error=row.error or "")
                )
            chosen = list(
                session.scalars(
                    select(Submission.id)
                    .where(Submission.task_id == row.task_id)
                    .where(Submission.team_id == team.id)
                    .where(Submission.selected.is_(True))
                    .order_by(Submission.created_at)
                )
            )
            k = task.built.spec.final_selections
            if len(chosen) >= k:
                raise ApiError(
                    409, MSG_TOO_MANY.format(k=k, task_id=task.id, ids=", ".join(chosen))
                )
        row.selected = selected
        return row.task_id

"""A team's own submissions."""

from __future__ import annotations

from fastapi import APIRouter

from trustlab.schemas import SubmissionInfo
from trustlab.server.deps import ArenaDep, SessionDep, TeamDep
from trustlab.server.errors import ApiError
from trustlab.server.models import Submission, utcnow
from trustlab.server.services.submissions import submission_info

router = APIRouter(prefix="/api/v1/submissions", tags=["submissions"])


@router.get("/{submission_id}", response_model=SubmissionInfo)
def get_submission(
    submission_id: str, arena: ArenaDep, session: SessionDep, team: TeamDep
) -> SubmissionInfo:
    """Status, public score and metrics of one of the team's submissions."""
    row = session.get(Submission, submission_id)
    task = None
    if row is not None:
        try:
            task = arena.task(row.task_id)
        except ApiError:
            task = None
    return submission_info(session, submission_id=submission_id, team=team, task=task, now=utcnow())

"""A team's own submissions: list them, read one, mark it as final (or not)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from trustlab.schemas import SubmissionInfo
from trustlab.server.deps import ArenaDep, SessionDep, TeamDep
from trustlab.server.errors import ApiError
from trustlab.server.models import Submission, utcnow
from trustlab.server.services import selection
from trustlab.server.services.submissions import submission_info, team_submissions

router = APIRouter(prefix="/api/v1/submissions", tags=["submissions"])


@router.get("", response_model=list[SubmissionInfo])
def list_submissions(
    arena: ArenaDep, session: SessionDep, team: TeamDep, task_id: str | None = None
) -> list[SubmissionInfo]:
    """Every submission of the team (to one task with ``?task_id=``), newest first."""
    tasks = {t.id: t for t in arena.tasks()}
    if task_id is not None:
        arena.task(task_id)  # 404 for an unknown task
    return team_submissions(session, team=team, tasks=tasks, now=utcnow(), task_id=task_id)


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


async def _set(arena: ArenaDep, team: TeamDep, submission_id: str, selected: bool) -> None:
    await run_in_threadpool(
        lambda: selection.set_selected(
            arena.sessions,
            submission_id=submission_id,
            team=team,
            get_task=arena.task,
            selected=selected,
            now=utcnow(),
        )
    )


@router.post("/{submission_id}/select", response_model=SubmissionInfo)
async def select_submission(submission_id: str, arena: ArenaDep, team: TeamDep) -> SubmissionInfo:
    """Mark one of the team's submissions as final (up to the task's ``final_selections``).

    After the deadline the private leaderboard uses the best selected submission, or the
    team's best public one where it selected none. 409 when the team already has as many
    final choices as allowed, 403 after the deadline.
    """
    await _set(arena, team, submission_id, True)
    return await run_in_threadpool(_read, arena, team, submission_id)


@router.post("/{submission_id}/unselect", response_model=SubmissionInfo)
async def unselect_submission(submission_id: str, arena: ArenaDep, team: TeamDep) -> SubmissionInfo:
    """Remove the final mark from one of the team's submissions (403 after the deadline)."""
    await _set(arena, team, submission_id, False)
    return await run_in_threadpool(_read, arena, team, submission_id)


def _read(arena: ArenaDep, team: TeamDep, submission_id: str) -> SubmissionInfo:
    with arena.sessions() as session:
        row = session.get(Submission, submission_id)
        task = arena.task(row.task_id) if row is not None else None
        return submission_info(
            session, submission_id=submission_id, team=team, task=task, now=utcnow()
        )

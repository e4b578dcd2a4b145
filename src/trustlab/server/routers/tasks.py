"""Tasks, their artefacts and their leaderboards."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from trustlab.schemas import Leaderboard, TaskDetail, TaskSummary
from trustlab.server.deps import ArenaDep, SessionDep, TeamDep
from trustlab.server.models import utcnow
from trustlab.server.services.leaderboard import leaderboard

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get("", response_model=list[TaskSummary])
def list_tasks(arena: ArenaDep) -> list[TaskSummary]:
    """Every task, with its kind, deadline, metric and submission rules."""
    return [t.summary() for t in arena.tasks()]


@router.get("/{task_id}", response_model=TaskDetail)
def get_task(task_id: str, arena: ArenaDep) -> TaskDetail:
    """One task, with its artefacts' names, sizes and SHA-256 digests."""
    return arena.task(task_id).detail()


@router.get("/{task_id}/artifacts/{name}", response_class=FileResponse)
def get_artifact(task_id: str, name: str, arena: ArenaDep, team: TeamDep) -> FileResponse:
    """Download an artefact (authenticated)."""
    path = arena.task(task_id).artifact_path(name)
    return FileResponse(path, filename=name, media_type="application/octet-stream")


@router.get("/{task_id}/leaderboard", response_model=Leaderboard)
def get_leaderboard(task_id: str, arena: ArenaDep, session: SessionDep) -> Leaderboard:
    """Best public score per team; private scores only after the deadline."""
    return leaderboard(session, task=arena.task(task_id), now=utcnow())

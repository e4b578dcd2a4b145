"""HTML pages: the leaderboards."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from trustlab.server.deps import ArenaDep, SessionDep
from trustlab.server.models import utcnow
from trustlab.server.rendering import render
from trustlab.server.services.leaderboard import leaderboard

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/leaderboard_page")


@router.get("/leaderboard_page", response_class=HTMLResponse)
def leaderboard_page(
    arena: ArenaDep, session: SessionDep, task_id: str | None = None
) -> HTMLResponse:
    """Every task's leaderboard (or one task's, with ``?task_id=``) as an HTML page."""
    now = utcnow()
    tasks = [arena.task(task_id)] if task_id else arena.tasks()
    boards = [(t, leaderboard(session, task=t, now=now)) for t in tasks]
    html = render("leaderboard.html", boards=boards, now=now)
    return HTMLResponse(html)

"""HTML pages: the leaderboards."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, select_autoescape

from trustlab.server.deps import ArenaDep, SessionDep
from trustlab.server.models import utcnow
from trustlab.server.services.leaderboard import leaderboard

router = APIRouter(tags=["pages"], include_in_schema=False)

_ENV = Environment(autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def _template(name: str) -> str:
    return (resources.files("trustlab.server") / "templates" / name).read_text(encoding="utf-8")


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
    html = _ENV.from_string(_template("leaderboard.html")).render(boards=boards, now=now)
    return HTMLResponse(html)

"""The team's status page (``/team``) and its JSON twin (``GET /api/v1/team/submissions``).

The page is reached with the team's key, entered once into a form: the arena then keeps a
browser session in a same-site, HTTP-only cookie (a random token, stored only as a hash; the
key never goes into the cookie or the page), or with a one-time login link that
``trustlab admin team import`` writes beside each new key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Cookie, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from trustlab.schemas import TeamStatus
from trustlab.server.db import write_session
from trustlab.server.deps import ArenaDep, SessionDep, TeamDep
from trustlab.server.errors import ApiError
from trustlab.server.models import Team, utcnow
from trustlab.server.rendering import render
from trustlab.server.services import teams
from trustlab.server.services.status import team_status

COOKIE = "trustlab_team"

router = APIRouter(tags=["team"])
pages = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/api/v1/team/submissions", response_model=TeamStatus)
def get_team_status(arena: ArenaDep, session: SessionDep, team: TeamDep) -> TeamStatus:
    """The team, its members, its limits, cooldowns and query budgets per task, and every
    one of its submissions (newest first), as its status page shows them."""
    return team_status(session, team=team, tasks=arena.tasks(), now=utcnow())


def _page(arena: ArenaDep, *, team: Team | None, error: str | None = None) -> str:
    now = utcnow()
    status = None
    if team is not None:
        with arena.sessions() as session:
            status = team_status(session, team=team, tasks=arena.tasks(), now=now)
    return render(
        "team.html",
        status=status,
        now=now,
        error=error,
        session_days=arena.settings.session_days,
        any_final=bool(status and any(s.private_score is not None for s in status.submissions)),
    )


def _signed_in(response: Response, request: Request, token: str, days: float) -> Response:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(days * 86400),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def _session_team(arena: ArenaDep, token: str | None) -> Team | None:
    if not token:
        return None
    try:
        with write_session(arena.sessions) as session:
            return teams.use_login(session, token, kind=teams.SESSION)
    except ApiError:
        return None


def _new_session(arena: ArenaDep, team: Team) -> str:
    with write_session(arena.sessions) as session:
        return teams.new_login(
            session,
            team=team,
            kind=teams.SESSION,
            lifetime=timedelta(days=arena.settings.session_days),
        )


@pages.get("/team", response_class=HTMLResponse)
async def team_page(
    arena: ArenaDep, session_token: Annotated[str | None, Cookie(alias=COOKIE)] = None
) -> HTMLResponse:
    """The team's status page, or the login form."""
    team = await run_in_threadpool(_session_team, arena, session_token)
    html = await run_in_threadpool(lambda: _page(arena, team=team))
    response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
    if team is None and session_token:
        response.delete_cookie(COOKIE, path="/")
    return response


@pages.post("/team/login", response_class=HTMLResponse)
async def team_login(request: Request, arena: ArenaDep) -> Response:
    """Log in with the team's key (form field ``key``); sets the session cookie."""
    form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
    key = form.get("key")

    def check() -> Team:
        with arena.sessions() as session:
            return teams.authenticate(session, key if isinstance(key, str) else None)

    try:
        team = await run_in_threadpool(check)
    except ApiError as exc:
        detail = exc.detail
        html = await run_in_threadpool(lambda: _page(arena, team=None, error=detail))
        return HTMLResponse(html, status_code=401, headers={"Cache-Control": "no-store"})
    token = await run_in_threadpool(_new_session, arena, team)
    return _signed_in(
        RedirectResponse("/team", status_code=303), request, token, arena.settings.session_days
    )


@pages.get("/team/login/{token}")
async def team_login_link(token: str, request: Request, arena: ArenaDep) -> Response:
    """Use a one-time login link: the link is spent, the browser gets a session cookie."""

    def use() -> Team:
        with write_session(arena.sessions) as session:
            return teams.use_login(session, token, kind=teams.LINK)

    try:
        team = await run_in_threadpool(use)
    except ApiError as exc:
        detail = exc.detail
        html = await run_in_threadpool(lambda: _page(arena, team=None, error=detail))
        return HTMLResponse(html, status_code=401, headers={"Cache-Control": "no-store"})
    session_token = await run_in_threadpool(_new_session, arena, team)
    return _signed_in(
        RedirectResponse("/team", status_code=303),
        request,
        session_token,
        arena.settings.session_days,
    )


@pages.post("/team/logout")
async def team_logout(
    arena: ArenaDep, session_token: Annotated[str | None, Cookie(alias=COOKIE)] = None
) -> Response:
    """End the browser session."""

    def end() -> None:
        with write_session(arena.sessions) as session:
            teams.end_login(session, session_token)

    await run_in_threadpool(end)
    response = RedirectResponse("/team", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response

"""The read-only staff page (``/staff``): queue depth, workers, failures, per-task counts.

Reached with the staff key (setting ``TRUSTLAB_STAFF_KEY``), sent as ``X-Staff-Key`` or
entered once into the page's form, after which the browser keeps a same-site, HTTP-only
cookie derived from the key (changing the key ends every staff session). Without a staff key
in the settings the page does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Cookie, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from trustlab.server.deps import ArenaDep
from trustlab.server.errors import ApiError
from trustlab.server.models import utcnow
from trustlab.server.rendering import render
from trustlab.server.services.staff import overview

COOKIE = "trustlab_staff"
MSG_STAFF_OFF = "The staff page is off; set TRUSTLAB_STAFF_KEY on the server to turn it on."
MSG_STAFF_KEY = "That is not the staff key (setting TRUSTLAB_STAFF_KEY)."

pages = APIRouter(tags=["pages"], include_in_schema=False)


def _staff_key(arena: ArenaDep) -> str:
    key = arena.settings.staff_key
    if key is None or not key.get_secret_value():
        raise ApiError(404, MSG_STAFF_OFF)
    return key.get_secret_value()


def _cookie_value(key: str) -> str:
    return hmac.new(key.encode(), b"trustlab staff session", hashlib.sha256).hexdigest()


def _allowed(key: str, header: str | None, cookie: str | None) -> bool:
    if header and hmac.compare_digest(header.encode(), key.encode()):
        return True
    return bool(cookie) and hmac.compare_digest(str(cookie), _cookie_value(key))


def _page(arena: ArenaDep, *, error: str | None = None, allowed: bool) -> str:
    data = None
    if allowed:
        with arena.sessions() as session:
            data = overview(session, stale_seconds=arena.settings.worker_stale_seconds)
    return render(
        "staff.html",
        data=data,
        tasks=arena.tasks() if allowed else [],
        error=error,
        now=utcnow(),
    )


@pages.get("/staff", response_class=HTMLResponse)
async def staff_page(
    arena: ArenaDep,
    x_staff_key: Annotated[str | None, Header(alias="X-Staff-Key")] = None,
    staff_cookie: Annotated[str | None, Cookie(alias=COOKIE)] = None,
) -> HTMLResponse:
    """The staff overview, or its login form."""
    key = _staff_key(arena)
    allowed = _allowed(key, x_staff_key, staff_cookie)
    html = await run_in_threadpool(lambda: _page(arena, allowed=allowed))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@pages.post("/staff/login")
async def staff_login(request: Request, arena: ArenaDep) -> Response:
    key = _staff_key(arena)
    form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
    given = form.get("key")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), key.encode()):
        html = await run_in_threadpool(lambda: _page(arena, error=MSG_STAFF_KEY, allowed=False))
        return HTMLResponse(html, status_code=401, headers={"Cache-Control": "no-store"})
    response = RedirectResponse("/staff", status_code=303)
    response.set_cookie(
        COOKIE,
        _cookie_value(key),
        max_age=12 * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/staff",
    )
    return response

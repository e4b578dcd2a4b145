"""Security headers on every response, and a JSON answer for an unexpected error.

A pure ASGI middleware (it neither buffers nor reads bodies, so uploads stream through it).
Every response gets ``Content-Security-Policy`` (with ``frame-ancestors 'none'``),
``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
no-referrer``. The policy is the strictest each kind of response allows: none at all for JSON
and files, inline styles for the leaderboard page, and the interactive docs' own scripts for
``/docs`` and ``/redoc``.
"""

from __future__ import annotations

import logging

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("trustlab.server")

MSG_INTERNAL = "Internal server error; the arena's log has the details."

CSP_API = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CSP_PAGE = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
CSP_DOCS = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src https://fonts.gstatic.com; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def policy_for(path: str, content_type: str) -> str:
    """The Content-Security-Policy of a response to ``path`` with ``content_type``."""
    if path.startswith(DOCS_PATHS):
        return CSP_DOCS
    if content_type.startswith("text/html"):
        return CSP_PAGE
    return CSP_API


class SecureResponses:
    """Adds the security headers to every response; answers an unexpected error with a JSON
    500 (with the headers too) and logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                policy = policy_for(scope.get("path", ""), headers.get("content-type", ""))
                headers.setdefault("Content-Security-Policy", policy)
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = JSONResponse({"detail": MSG_INTERNAL}, status_code=500)
            await response(scope, receive, send_secured)

"""The FastAPI application of the arena."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from trustlab import __version__
from trustlab.core.errors import TrustlabError
from trustlab.server.arena import Arena
from trustlab.server.errors import ApiError, overloaded
from trustlab.server.middleware import MSG_INTERNAL, SecureResponses
from trustlab.server.openapi import document_errors
from trustlab.server.routers import pages, query, staff, submissions, submit, tasks, team
from trustlab.server.settings import Settings

log = logging.getLogger("trustlab.server")

WHAT_POOL = "every one of its database connections stayed in use for {seconds:g} s"
WHAT_DATABASE = "its database is busy or out of reach"
#: Words of the database errors that mean "busy or unreachable", not a fault in the arena.
TRANSIENT = ("locked", "busy", "too many", "connect", "timeout", "timed out", "terminat")


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The arena app. Settings default to the ``TRUSTLAB_*`` environment."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        arena = Arena(settings)
        arena.start()
        arena.warm_up()
        app.state.arena = arena
        try:
            yield
        finally:
            arena.close()

    app = FastAPI(
        title="trustlab arena",
        version=__version__,
        summary="Evaluation server for trustworthy-ML challenges.",
        lifespan=lifespan,
    )
    app.include_router(submit.router)
    app.include_router(tasks.router)
    app.include_router(query.router)
    app.include_router(submissions.router)
    app.include_router(team.router)
    app.include_router(pages.router)
    app.include_router(team.pages)
    app.include_router(staff.pages)
    app.add_middleware(SecureResponses)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            app.openapi_schema = document_errors(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        intake = app.state.arena.intake
        return {"status": "ok", "uploads": intake.uploads, "checks": intake.checks}

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _detail(exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(TrustlabError)
    async def trustlab_error(request: Request, exc: TrustlabError) -> JSONResponse:
        return _detail(exc.status_code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}")
        return _detail(422, "Invalid request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _detail(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("no free database connection for %s %s", request.method, request.url.path)
        busy = overloaded(
            WHAT_POOL.format(seconds=settings.db_pool_timeout), retry=settings.retry_after_seconds
        )
        return _detail(busy.status_code, busy.detail, busy.headers)

    @app.exception_handler(OperationalError)
    async def database_error(request: Request, exc: OperationalError) -> JSONResponse:
        if not (exc.connection_invalidated or any(w in str(exc).lower() for w in TRANSIENT)):
            log.error("database error on %s %s: %s", request.method, request.url.path, exc)
            return _detail(500, MSG_INTERNAL)
        log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
        busy = overloaded(WHAT_DATABASE, retry=settings.retry_after_seconds)
        return _detail(busy.status_code, busy.detail, busy.headers)

    return app

"""The FastAPI application of the arena."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from trustlab import __version__
from trustlab.core.errors import TrustlabError
from trustlab.server.arena import Arena
from trustlab.server.errors import ApiError
from trustlab.server.routers import pages, query, submissions, submit, tasks
from trustlab.server.settings import Settings

log = logging.getLogger("trustlab.server")


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The arena app. Settings default to the ``TRUSTLAB_*`` environment."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        arena = Arena(settings)
        arena.start()
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
    app.include_router(pages.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

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

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _detail(500, "Internal server error; the arena's log has the details.")

    return app

"""``POST /api/v1/tasks/{task_id}/query``: the victim's answers, within the team's budget."""

from __future__ import annotations

import functools
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from trustlab.schemas import QueryAnswer, QueryStatus, RateLimitInfo
from trustlab.server.deps import ArenaDep
from trustlab.server.errors import ApiError
from trustlab.server.models import Team, utcnow
from trustlab.server.services import queries
from trustlab.server.services.teams import authenticate

router = APIRouter(prefix="/api/v1/tasks", tags=["queries"])

_CACHE_LOCK = threading.Lock()


def get_victims(request: Request) -> queries.VictimCache:
    """The app's victim cache, made on first use."""
    state = request.app.state
    with _CACHE_LOCK:
        cache = getattr(state, "victims", None)
        if cache is None:
            cache = queries.VictimCache()
            state.victims = cache
    return cache


def query_team(
    arena: ArenaDep, x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> Team:
    """The team behind the key, read in a session closed at once: a query holds no database
    connection while it waits for the victim, so many concurrent queries cannot drain the
    connection pool."""
    with arena.sessions() as session:
        return authenticate(session, x_api_key)


VictimsDep = Annotated[queries.VictimCache, Depends(get_victims)]
QueryTeamDep = Annotated[Team, Depends(query_team)]


async def _read_body(request: Request, *, limit: int, max_batch: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (chunked or not)."""
    too_large = ApiError(413, queries.MSG_BODY_TOO_LARGE.format(limit=limit, max_batch=max_batch))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _wants_npy(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return any(media in accept for media in queries.NPY_TYPES)


@router.post(
    "/{task_id}/query",
    response_model=QueryAnswer,
    responses={200: {"content": {queries.NPY_MEDIA_TYPE: {}}}},
)
async def query(
    task_id: str, request: Request, arena: ArenaDep, team: QueryTeamDep, victims: VictimsDep
) -> Response:
    """Answer a batch of inputs with the victim's outputs, through the task's defence.

    The body is a ``.npy`` array (``Content-Type: application/x-npy``) or JSON
    ``{"inputs": [...]}``; the answer is JSON, or ``.npy`` with ``Accept: application/x-npy``.
    ``X-Queries-Remaining`` carries the team's budget left.
    """
    task = arena.task(task_id)
    victim = await run_in_threadpool(victims.get, task)
    rules = victim.rules
    try:
        queries.check_open(task, utcnow())
        body = await _read_body(request, limit=rules.max_body_bytes, max_batch=rules.max_rows)
        x = await run_in_threadpool(
            functools.partial(
                queries.parse_batch,
                body,
                content_type=request.headers.get("content-type", ""),
                rules=rules,
            )
        )
        refuse = victim.detector_action == "refuse"
        receipt = await run_in_threadpool(
            functools.partial(
                queries.charge,
                arena.sessions,
                task=task,
                team=team,
                rules=rules,
                n=len(x),
                refuse_flagged=refuse,
            )
        )
    except ApiError as exc:
        if queries.REMAINING_HEADER not in exc.headers:
            used = await run_in_threadpool(
                functools.partial(queries.queries_used, arena.sessions, task=task, team=team)
            )
            exc.headers[queries.REMAINING_HEADER] = str(max(0, rules.query_budget - used))
        raise
    try:
        who = queries.client_id(team)
        answer = await run_in_threadpool(functools.partial(victim.answer, x, client_id=who))
        if victim.detector_action is not None and answer.labels is not None:
            verdict = await run_in_threadpool(
                functools.partial(
                    queries.observe,
                    arena.sessions,
                    task=task,
                    team=team,
                    victim=victim,
                    inputs=x,
                    labels=answer.labels,
                )
            )
            if refuse and verdict is not None and verdict.flagged:
                raise ApiError(403, queries.MSG_FLAGGED_NOW.format(reason=verdict.reason))
    except Exception as exc:
        await run_in_threadpool(queries.refund, arena.sessions, receipt)
        if isinstance(exc, ApiError):
            exc.headers[queries.REMAINING_HEADER] = str(receipt.remaining + receipt.n)
        raise
    headers = {
        queries.REMAINING_HEADER: str(receipt.remaining),
        "X-Queries-Used": str(receipt.used),
    }
    if _wants_npy(request):
        return Response(
            queries.to_npy(answer.outputs), media_type=queries.NPY_MEDIA_TYPE, headers=headers
        )
    payload = QueryAnswer(
        task_id=task.id,
        output=rules.output,
        n=len(x),
        outputs=answer.outputs.tolist(),
        queries_used=receipt.used,
        queries_remaining=receipt.remaining,
    )
    return JSONResponse(payload.model_dump(), headers=headers)


@router.get("/{task_id}/query", response_model=QueryStatus)
def query_status(
    task_id: str, arena: ArenaDep, team: QueryTeamDep, victims: VictimsDep
) -> QueryStatus:
    """The query format, the limits and the team's budget left; costs nothing."""
    task = arena.task(task_id)
    rules = victims.get(task).rules
    used = queries.queries_used(arena.sessions, task=task, team=team)
    info = rules.to_json()
    return QueryStatus(
        task_id=task.id,
        input_shape=info["input_shape"],
        input_dtype=info["input_dtype"],
        input_range=info["input_range"],
        output=info["output"],
        output_dim=info["output_dim"],
        max_batch=info["max_batch"],
        rate_limit=RateLimitInfo(**info["rate_limit"]),
        query_budget=rules.query_budget,
        queries_used=used,
        queries_remaining=max(0, rules.query_budget - used),
    )

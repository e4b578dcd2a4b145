"""``POST /submit/{task_id}``: validate, store, queue.

The steps, and what each one holds:

1. the deadline, the declared size and the team's cooldown and limits (a short database
   session, closed before the body is read);
2. an upload slot (:class:`~trustlab.server.intake.IntakeGate`), then the body, read with an
   idle timeout and an overall deadline that grows with the declared size (408 for a stalled
   or far too slow upload, and the connection is closed);
3. a check slot (one per team at a time, a bounded number in all), then the file's check in
   a sandbox (no database connection is held meanwhile);
4. one short locked transaction that checks the rules again, moves the file into place and
   inserts the row.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message

from trustlab.schemas import SubmissionAccepted, SubmissionStatus
from trustlab.server import storage
from trustlab.server.deps import ArenaDep, TeamDep
from trustlab.server.errors import ApiError
from trustlab.server.models import utcnow
from trustlab.server.services import submissions as service
from trustlab.server.settings import Settings

router = APIRouter(tags=["submissions"])

MSG_NOT_MULTIPART = (
    "The request body is not valid multipart/form-data ({error}); send the file as form "
    "field 'file', e.g. curl -F file=@scores.csv."
)
MSG_TWO_FILES = "Send exactly one file, as form field 'file'."
MSG_NO_LENGTH = (
    "The request has no Content-Length header; send the file as an ordinary (not chunked) "
    "multipart upload, as curl -F and the trustlab client do."
)
MSG_STALLED = (
    "The upload stalled: no data arrived for {seconds:g} s, so the arena stopped waiting and "
    "closed the connection. Nothing was stored and nothing counted; send the file again."
)
MSG_TOO_SLOW = (
    "The upload was too slow: {size} bytes may take at most {seconds:g} s here, so the arena "
    "stopped waiting and closed the connection. Nothing was stored and nothing counted; send "
    "the file again over a faster connection."
)
FORM_SLACK = 1 << 20

#: The multipart body in the OpenAPI schema: the file, plus the task's own form fields
#: (``GET /api/v1/tasks/{task_id}`` lists them under ``submission_rules.form_fields``).
SUBMIT_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "The submitted file (score file or model weights).",
                    }
                },
                "additionalProperties": {
                    "type": "string",
                    "description": "A form field the task declares, e.g. model_name.",
                },
            }
        }
    },
}


class UploadTimeout(Exception):
    """The client stopped sending the body (or sent it far too slowly)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _body_length(request: Request) -> int:
    """The declared body size. Uploads must declare it, so the size limit holds before any
    byte is stored (a chunked upload would be spooled whole before it could be measured)."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise ApiError(411, MSG_NO_LENGTH)
    return int(length)


def upload_deadline(settings: Settings, length: int) -> float:
    """Seconds an upload of ``length`` bytes may take: a base plus a minimum rate."""
    return settings.upload_seconds + length / settings.upload_min_bytes_per_second


async def read_form(request: Request, *, settings: Settings, length: int) -> FormData:
    """The multipart form, read with an idle timeout between chunks and an overall deadline.

    Raises :class:`UploadTimeout` when the client stalls for ``upload_idle_seconds`` or the
    upload outlasts :func:`upload_deadline`; 400 for a body that is not multipart.
    """
    loop = asyncio.get_running_loop()
    allowed = upload_deadline(settings, length)
    deadline = loop.time() + allowed
    idle = settings.upload_idle_seconds

    async def receive() -> Message:
        left = deadline - loop.time()
        if left <= 0:
            raise UploadTimeout(MSG_TOO_SLOW.format(size=length, seconds=allowed))
        wait = min(idle, left)
        try:
            return await asyncio.wait_for(request.receive(), timeout=wait)
        except asyncio.TimeoutError:
            if wait < idle:
                raise UploadTimeout(MSG_TOO_SLOW.format(size=length, seconds=allowed)) from None
            raise UploadTimeout(MSG_STALLED.format(seconds=idle)) from None

    timed = Request(request.scope, receive)
    try:
        return await timed.form(max_files=2, max_fields=32, max_part_size=64 * 1024)
    except UploadTimeout:
        raise
    except Exception as exc:  # starlette raises its own errors for a malformed body
        raise ApiError(400, MSG_NOT_MULTIPART.format(error=exc)) from None


@router.post(
    "/submit/{task_id}",
    status_code=202,
    response_model=SubmissionAccepted,
    openapi_extra={"requestBody": SUBMIT_BODY},
)
async def submit(
    task_id: str, request: Request, arena: ArenaDep, team: TeamDep, background: BackgroundTasks
) -> SubmissionAccepted:
    """Submit a file to a task. Checked at once; scored later by a worker.

    The body is multipart: the file as field ``file``, plus the form fields the task
    declares. 202 means the file passed its check and is stored and queued; any refusal
    leaves nothing behind and counts for nothing.
    """
    settings = arena.settings
    task = arena.task(task_id)
    limit = task.built.spec.max_file_size
    service.check_open(task, utcnow())
    length = _body_length(request)
    if length > limit + FORM_SLACK:
        raise ApiError(413, service.MSG_TOO_LARGE.format(size=length, limit=limit))

    def precheck() -> None:
        with arena.sessions() as session:
            service.check_rules(session, task=task, team=team, now=utcnow())

    await run_in_threadpool(precheck)
    async with arena.intake.upload(team.id):
        try:
            form = await read_form(request, settings=settings, length=length)
        except UploadTimeout as exc:
            raise ApiError(408, exc.detail, headers={"Connection": "close"}) from None
        incoming = None
        try:
            uploads = [v for v in form.getlist("file") if isinstance(v, UploadFile)]
            if not uploads:
                raise ApiError(422, service.MSG_NO_FILE)
            if len(uploads) > 1:
                raise ApiError(422, MSG_TWO_FILES)
            upload = uploads[0]
            filename = upload.filename or "submission"
            fields = {k: v for k, v in form.multi_items() if k != "file" and isinstance(v, str)}
            fields = service.check_fields(task, fields)
            try:
                incoming = await run_in_threadpool(
                    storage.receive, upload.file, folder=arena.incoming, limit=limit
                )
            except storage.TooLarge as exc:
                raise ApiError(
                    413, service.MSG_TOO_LARGE.format(size=exc.size, limit=limit)
                ) from None
            async with arena.intake.check(team.id):
                summary = await run_in_threadpool(
                    service.validate_file,
                    arena.context,
                    task=task,
                    incoming=incoming,
                    fields=fields,
                    filename=filename,
                )
            row = await run_in_threadpool(
                service.store,
                arena.context,
                task=task,
                team=team,
                incoming=incoming,
                filename=filename,
                fields=fields,
                summary=summary,
            )
        finally:
            await form.close()
            if incoming is not None:
                incoming.path.unlink(missing_ok=True)
    # After the reply: the submission is stored, and a slow or absent broker must not hold up
    # the answer (the redispatcher republishes what this misses).
    background.add_task(arena.dispatch, row.id)
    return SubmissionAccepted(submission_id=row.id, status=SubmissionStatus.QUEUED)

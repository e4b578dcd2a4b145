"""``POST /submit/{task_id}``: validate, store, queue."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from trustlab.schemas import SubmissionAccepted, SubmissionStatus
from trustlab.server import storage
from trustlab.server.deps import ArenaDep, TeamDep
from trustlab.server.errors import ApiError
from trustlab.server.models import utcnow
from trustlab.server.services import submissions as service

router = APIRouter(tags=["submissions"])

MSG_NOT_MULTIPART = (
    "The request body is not valid multipart/form-data ({error}); send the file as form "
    "field 'file', e.g. curl -F file=@scores.csv."
)
MSG_TWO_FILES = "Send exactly one file, as form field 'file'."
FORM_SLACK = 1 << 20


MSG_NO_LENGTH = (
    "The request has no Content-Length header; send the file as an ordinary (not chunked) "
    "multipart upload, as curl -F and the trustlab client do."
)


def _body_length(request: Request) -> int:
    """The declared body size. Uploads must declare it, so the size limit holds before any
    byte is stored (a chunked upload would be spooled whole before it could be measured)."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise ApiError(411, MSG_NO_LENGTH)
    return int(length)


@router.post("/submit/{task_id}", status_code=202, response_model=SubmissionAccepted)
async def submit(
    task_id: str, request: Request, arena: ArenaDep, team: TeamDep, background: BackgroundTasks
) -> SubmissionAccepted:
    """Submit a file to a task. Validated at once; scored later by a worker."""
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
    try:
        form = await request.form(max_files=2, max_fields=32, max_part_size=64 * 1024)
    except Exception as exc:  # starlette raises its own errors for a malformed body
        raise ApiError(400, MSG_NOT_MULTIPART.format(error=exc)) from None
    incoming = None
    try:
        uploads = [v for v in form.getlist("file") if isinstance(v, UploadFile)]
        if not uploads:
            raise ApiError(422, service.MSG_NO_FILE)
        if len(uploads) > 1:
            raise ApiError(422, MSG_TWO_FILES)
        upload = uploads[0]
        fields = {k: v for k, v in form.multi_items() if k != "file" and isinstance(v, str)}
        fields = service.check_fields(task, fields)
        try:
            incoming = await run_in_threadpool(
                storage.receive, upload.file, root=arena.settings.submissions_dir, limit=limit
            )
        except storage.TooLarge as exc:
            raise ApiError(413, service.MSG_TOO_LARGE.format(size=exc.size, limit=limit)) from None
        summary = await run_in_threadpool(
            service.validate_file, arena.context, task=task, incoming=incoming, fields=fields
        )
        row = await run_in_threadpool(
            service.store,
            arena.context,
            task=task,
            team=team,
            incoming=incoming,
            filename=upload.filename or "submission",
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

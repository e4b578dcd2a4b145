"""The victim-query service: batches, the per-team budget and rate limit, and the detector.

A query is answered in this order, and a request refused at any step costs nothing:

1. the deadline (403) and, for a detector that refuses, an earlier flag (403);
2. the batch, read and checked before anything is charged (413 too many bytes, 400 a bad
   batch naming the row);
3. the charge: in one locked transaction (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR
   UPDATE`` on PostgreSQL) the team's row is read, the rate-limit window and the budget are
   checked (429 with ``Retry-After``) and the rows are added to ``used``, all before the
   victim runs; concurrent requests queue on that lock, so together they never pass the budget;
4. the victim's answer (in a worker thread); if it fails, the charge is given back;
5. the detector, in a second locked transaction that reads, updates and writes back the
   team's detector state.
"""

from __future__ import annotations

import io
import json
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import torch
from numpy.lib import format as npy_format
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from trustlab.core.errors import DataError
from trustlab.server.db import write_session
from trustlab.server.errors import ApiError
from trustlab.server.models import QueryAccount, Team, utcnow
from trustlab.server.services.tasks import ServedTask
from trustlab.tasks.base import QueryRules, SupportsQueries, Verdict, Victim

log = logging.getLogger("trustlab.arena")

NPY_TYPES = ("application/x-npy", "application/octet-stream")
NPY_MEDIA_TYPE = "application/x-npy"
JSON_MEDIA_TYPE = "application/json"
REMAINING_HEADER = "X-Queries-Remaining"
NO_REFILL_SECONDS = 86400

MSG_NOT_QUERYABLE = (
    "Task {task_id!r} (kind {kind!r}) has no victim to query; only tasks whose kind answers "
    "queries (e.g. model-extraction) have POST /api/v1/tasks/{{task_id}}/query."
)
MSG_CLOSED = "Task {task_id!r} closed at its deadline {deadline}; it answers no more queries."
MSG_FLAGGED = (
    "Your team's queries to {task_id!r} were flagged by the task's extraction detector on "
    "{when}, and this task refuses flagged teams; ask the course staff."
)
MSG_FLAGGED_NOW = (
    "This batch made the task's extraction detector flag your team's queries ({reason}); it "
    "was not answered and cost nothing, and this task answers flagged teams no more. Ask the "
    "course staff."
)
MSG_BODY_TOO_LARGE = (
    "The request body is over {limit} bytes, more than a full batch of {max_batch} rows; send "
    "at most {max_batch} rows per request."
)
MSG_CONTENT_TYPE = (
    "Unsupported Content-Type {content_type!r}: send the batch as a NumPy .npy body "
    '(Content-Type: application/x-npy) or as JSON {{"inputs": [...]}} '
    "(Content-Type: application/json)."
)
MSG_NPY = (
    "The body is not a readable .npy array ({error}); write it with numpy.save, without "
    "pickled objects."
)
MSG_JSON = 'The body is not valid JSON ({error}); send {{"inputs": [[...], ...]}}.'
MSG_JSON_SHAPE = (
    'The JSON body must be an object {{"inputs": [...]}} holding a nested list of numbers '
    "with one entry per row; {problem}."
)
MSG_BUDGET_SPENT = (
    "Query budget spent: your team has used all {budget} queries of task {task_id!r}; no "
    "more are answered."
)
MSG_BUDGET_SHORT = (
    "This batch has {n} rows but your team has only {remaining} of its {budget} queries of "
    "task {task_id!r} left; send at most {remaining} rows."
)
MSG_RATE_REQUESTS = (
    "Rate limit: task {task_id!r} answers at most {limit} requests per {window:g} s per team. "
    "Try again in {retry} s."
)
MSG_RATE_QUERIES = (
    "Rate limit: task {task_id!r} answers at most {limit} rows per {window:g} s per team, and "
    "your team has {used} in this window. Try again in {retry} s or send fewer rows."
)


def client_id(team: Team) -> str:
    """The identity a defence and a detector see for a team (stable across key rotations)."""
    return f"team-{team.id}"


class VictimCache:
    """Each task's victim, loaded once per server process and reloaded when the task is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._victims: dict[str, tuple[object, Victim]] = {}

    def get(self, task: ServedTask) -> Victim:
        kind = task.built.kind
        if not isinstance(kind, SupportsQueries):
            raise ApiError(404, MSG_NOT_QUERYABLE.format(task_id=task.id, kind=kind.name))
        with self._lock:
            cached = self._victims.get(task.id)
            if cached is not None and cached[0] is task.built:
                return cached[1]
            victim = kind.open_victim(task.built.spec, paths=task.built.paths)
            self._victims[task.id] = (task.built, victim)
            return victim


# -- reading a batch --------------------------------------------------------------------------


def parse_batch(body: bytes, *, content_type: str, rules: QueryRules) -> np.ndarray:
    """The batch in a request body (``.npy`` or JSON), checked against the task's rules."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NPY_TYPES:
        array = _read_npy(body)
    elif media in (JSON_MEDIA_TYPE, ""):
        array = _read_json(body)
    else:
        raise ApiError(400, MSG_CONTENT_TYPE.format(content_type=content_type))
    try:
        return rules.check_batch(array)
    except DataError as exc:
        raise ApiError(400, str(exc)) from None


def _read_npy(body: bytes) -> np.ndarray:
    """An array from ``.npy`` bytes. The header is read first and must describe exactly the
    bytes that follow, so a forged shape cannot make the server allocate more than the body
    holds; object arrays are refused (nothing is unpickled)."""
    stream = io.BytesIO(body)
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, OSError, EOFError) as exc:
        raise ApiError(400, MSG_NPY.format(error=str(exc)[:200])) from None
    if dtype.hasobject:
        raise ApiError(400, MSG_NPY.format(error="it holds Python objects"))
    expected = math.prod(shape) * dtype.itemsize
    held = len(body) - stream.tell()
    if held != expected:
        error = f"its header announces {expected} data bytes, the body holds {held}"
        raise ApiError(400, MSG_NPY.format(error=error))
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ApiError(400, MSG_NPY.format(error=str(exc)[:200])) from None
    return np.asarray(array)


def _read_json(body: bytes) -> np.ndarray:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, MSG_JSON.format(error=str(exc)[:200])) from None
    if not isinstance(data, dict) or set(data) != {"inputs"}:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ApiError(400, MSG_JSON_SHAPE.format(problem=f"found {found}"))
    inputs = data["inputs"]
    if not isinstance(inputs, list):
        raise ApiError(400, MSG_JSON_SHAPE.format(problem="'inputs' is not a list"))
    try:
        array = np.array(inputs)
    except ValueError:
        raise ApiError(
            400, MSG_JSON_SHAPE.format(problem="the rows have different lengths")
        ) from None
    if array.dtype == object:
        raise ApiError(400, MSG_JSON_SHAPE.format(problem="the rows have different lengths"))
    if array.size and array.dtype.kind not in "iuf":
        raise ApiError(400, MSG_JSON_SHAPE.format(problem=f"it holds {array.dtype.kind!r} data"))
    return array


def to_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# -- the budget and the rate limit ------------------------------------------------------------

_SQLITE_WRITES = threading.Lock()


@contextmanager
def _account_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A write transaction on the accounts. On SQLite, the threads of one process also take a
    process lock first: they would otherwise all wait for SQLite's write lock in its busy
    handler, which sleeps in steps of up to 100 ms and wastes most of the time under load.
    Processes still exclude each other through ``BEGIN IMMEDIATE``."""
    bind = sessions.kw.get("bind")
    sqlite = bind is not None and bind.dialect.name == "sqlite"
    if sqlite:
        _SQLITE_WRITES.acquire()
    try:
        with write_session(sessions) as session:
            yield session
    finally:
        if sqlite:
            _SQLITE_WRITES.release()


@dataclass(frozen=True)
class Charge:
    """Rows charged to a team's account for one request, so they can be given back."""

    task_id: str
    team_id: int
    n: int
    window_started_at: datetime | None
    used: int
    remaining: int


def check_open(task: ServedTask, now: datetime) -> None:
    if task.is_closed(now):
        assert task.deadline is not None
        raise ApiError(403, MSG_CLOSED.format(task_id=task.id, deadline=task.deadline.isoformat()))


def _locked_account(session: Session, *, task_id: str, team_id: int) -> QueryAccount:
    """The team's account row, locked for this transaction (created on first use)."""
    query = (
        select(QueryAccount)
        .where(QueryAccount.task_id == task_id, QueryAccount.team_id == team_id)
        .with_for_update()
    )
    account = session.scalar(query)
    if account is not None:
        return account
    try:
        with session.begin_nested():
            session.add(
                QueryAccount(
                    task_id=task_id,
                    team_id=team_id,
                    used=0,
                    requests=0,
                    window_requests=0,
                    window_queries=0,
                    updated_at=utcnow(),
                )
            )
    except IntegrityError:  # another request created it first (PostgreSQL)
        pass
    account = session.scalar(query)
    assert account is not None
    return account


def queries_used(sessions: sessionmaker[Session], *, task: ServedTask, team: Team) -> int:
    """How many rows the team has had answered (0 before its first query)."""
    with sessions() as session:
        used = session.scalar(
            select(QueryAccount.used).where(
                QueryAccount.task_id == task.id, QueryAccount.team_id == team.id
            )
        )
    return int(used or 0)


def _retry_after(task: ServedTask, now: datetime) -> int:
    if task.deadline is None:
        return NO_REFILL_SECONDS
    return max(1, math.ceil((task.deadline - now).total_seconds()))


def charge(
    sessions: sessionmaker[Session],
    *,
    task: ServedTask,
    team: Team,
    rules: QueryRules,
    n: int,
    refuse_flagged: bool,
) -> Charge:
    """Charge ``n`` rows to the team's account, or raise 403/429 and change nothing."""
    with _account_transaction(sessions) as session:
        account = _locked_account(session, task_id=task.id, team_id=team.id)
        now = utcnow()
        check_open(task, now)
        if refuse_flagged and account.flagged_at is not None:
            raise ApiError(
                403, MSG_FLAGGED.format(task_id=task.id, when=account.flagged_at.isoformat())
            )
        limit = rules.rate_limit
        window = timedelta(seconds=limit.window)
        started = account.window_started_at
        if started is None or now >= started + window:
            started, window_requests, window_queries = now, 0, 0
        else:
            window_requests, window_queries = account.window_requests, account.window_queries
        retry = max(1, math.ceil((started + window - now).total_seconds()))
        if limit.requests is not None and window_requests + 1 > limit.requests:
            raise ApiError(
                429,
                MSG_RATE_REQUESTS.format(
                    task_id=task.id, limit=limit.requests, window=limit.window, retry=retry
                ),
                headers={"Retry-After": str(retry)},
            )
        if limit.queries is not None and window_queries + n > limit.queries:
            raise ApiError(
                429,
                MSG_RATE_QUERIES.format(
                    task_id=task.id,
                    limit=limit.queries,
                    window=limit.window,
                    used=window_queries,
                    retry=retry,
                ),
                headers={"Retry-After": str(retry)},
            )
        budget = rules.query_budget
        left = max(0, budget - account.used)
        if n > left:
            message = (
                MSG_BUDGET_SPENT.format(budget=budget, task_id=task.id)
                if left == 0
                else MSG_BUDGET_SHORT.format(n=n, remaining=left, budget=budget, task_id=task.id)
            )
            raise ApiError(
                429,
                message,
                headers={
                    "Retry-After": str(_retry_after(task, now)),
                    REMAINING_HEADER: str(left),
                },
            )
        account.used += n
        account.requests += 1
        account.window_started_at = started
        account.window_requests = window_requests + 1
        account.window_queries = window_queries + n
        account.updated_at = now
        return Charge(
            task_id=task.id,
            team_id=team.id,
            n=n,
            window_started_at=started,
            used=account.used,
            remaining=budget - account.used,
        )


def refund(sessions: sessionmaker[Session], receipt: Charge) -> None:
    """Give back a charge whose request was not answered."""
    with _account_transaction(sessions) as session:
        account = _locked_account(session, task_id=receipt.task_id, team_id=receipt.team_id)
        account.used = max(0, account.used - receipt.n)
        account.requests = max(0, account.requests - 1)
        if account.window_started_at == receipt.window_started_at:
            account.window_requests = max(0, account.window_requests - 1)
            account.window_queries = max(0, account.window_queries - receipt.n)
        account.updated_at = utcnow()


# -- the detector -----------------------------------------------------------------------------


def observe(
    sessions: sessionmaker[Session],
    *,
    task: ServedTask,
    team: Team,
    victim: Victim,
    inputs: np.ndarray,
    labels: np.ndarray,
) -> Verdict | None:
    """Feed a batch to the task's detector with the team's saved state; save the new state.

    The detector is built fresh for each call and its per-team state lives in the team's
    account row, so it survives restarts and is shared by every server process.
    """
    detector = victim.new_detector()
    if detector is None:
        return None
    who = client_id(team)
    with _account_transaction(sessions) as session:
        account = _locked_account(session, task_id=task.id, team_id=team.id)
        if account.detector_state:
            detector.load_state_dict(who, account.detector_state)
        result = detector.observe(
            inputs=torch.from_numpy(inputs), client_id=who, labels=torch.from_numpy(labels)
        )
        account.detector_state = detector.state_dict(who)
        verdict = Verdict(
            flagged=bool(result.flagged),
            statistic=None if result.statistic is None else float(result.statistic),
            n_queries=int(result.n_queries),
            reason=str(result.reason),
        )
        if verdict.flagged and account.flagged_at is None:
            account.flagged_at = utcnow()
            account.flag_reason = verdict.reason
            log.warning(
                "task %s: the detector flagged team %s after %d queries: %s",
                task.id,
                team.name,
                verdict.n_queries,
                verdict.reason,
            )
    return verdict

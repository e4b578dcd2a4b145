"""A typed Python client of the arena's HTTP API.

>>> from trustlab.client import ArenaClient
>>> client = ArenaClient("http://127.0.0.1:8000", api_key="tl_...")  # doctest: +SKIP
>>> receipt = client.submit("mia-digits", "scores.csv")               # doctest: +SKIP
>>> client.wait(receipt.submission_id).public_score                   # doctest: +SKIP
0.31
>>> client.query("extraction-digits", x).remaining                    # doctest: +SKIP
2744
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import numpy as np

from trustlab.core.errors import TrustlabError
from trustlab.schemas import (
    Leaderboard,
    QueryStatus,
    SubmissionAccepted,
    SubmissionInfo,
    SubmissionStatus,
    TaskDetail,
    TaskSummary,
    TeamStatus,
)

MSG_UNREACHABLE = "Cannot reach the arena at {url}: {error}. Is the server running?"
MSG_WAIT_TIMEOUT = "Submission {id} is still {status} after {seconds:g} s."
MSG_BAD_ANSWER = "The arena's answer to a query is not a .npy array: {error}"
MSG_CLIENT_BUDGET = (
    "{n} rows would take your team past its budget for {task_id!r}: {remaining} queries are "
    "left. Nothing was sent; send at most {remaining} rows."
)
NPY_MEDIA_TYPE = "application/x-npy"


@dataclass(frozen=True)
class QueryResult:
    """The victim's outputs for one batch, and the team's query budget left after it."""

    outputs: np.ndarray
    remaining: int | None
    used: int | None = None


class ArenaError(TrustlabError):
    """An error answer from the arena: its HTTP status, message and ``Retry-After`` (and, for
    a query, the ``X-Queries-Remaining`` the answer carried)."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        retry_after: float | None = None,
        remaining: int | None = None,
    ) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after
        self.remaining = remaining


class ArenaClient:
    """Client of one arena for one team.

    Parameters
    ----------
    base_url : str
        The arena's address, e.g. ``http://127.0.0.1:8000``.
    api_key : str, optional
        The team's key (needed for artefacts, submissions and queries).
    timeout : float
        Seconds to wait for an answer.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._max_rows: dict[str, int] = {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> ArenaClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ArenaError(0, MSG_UNREACHABLE.format(url=self.base_url, error=exc)) from None
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text or response.reason_phrase
            retry = response.headers.get("Retry-After")
            raise ArenaError(
                response.status_code,
                detail,
                retry_after=float(retry) if retry else None,
                remaining=_header_int(response, "X-Queries-Remaining"),
            )
        return response

    def tasks(self) -> list[TaskSummary]:
        return [TaskSummary.model_validate(t) for t in self._request("GET", "/api/v1/tasks").json()]

    def task(self, task_id: str) -> TaskDetail:
        return TaskDetail.model_validate(self._request("GET", f"/api/v1/tasks/{task_id}").json())

    def download(self, task_id: str, name: str, dest: str | Path) -> Path:
        """Download one artefact to ``dest`` (a file path or an existing folder)."""
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / name
        response = self._request("GET", f"/api/v1/tasks/{task_id}/artifacts/{name}")
        dest.write_bytes(response.content)
        return dest

    def download_all(self, task_id: str, folder: str | Path) -> list[Path]:
        """Download every artefact of a task into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return [self.download(task_id, a.name, folder) for a in self.task(task_id).artifacts]

    def submit(
        self, task_id: str, file: str | Path, *, fields: Mapping[str, str] | None = None
    ) -> SubmissionAccepted:
        """Submit a file (plus the task's form fields); returns once it is stored and queued."""
        path = Path(file)
        with path.open("rb") as handle:
            response = self._request(
                "POST",
                f"/submit/{task_id}",
                files={"file": (path.name, handle)},
                data=dict(fields or {}),
            )
        return SubmissionAccepted.model_validate(response.json())

    def submission(self, submission_id: str) -> SubmissionInfo:
        response = self._request("GET", f"/api/v1/submissions/{submission_id}")
        return SubmissionInfo.model_validate(response.json())

    def submissions(self, task_id: str | None = None) -> list[SubmissionInfo]:
        """Every submission of the team (to one task with ``task_id``), newest first."""
        params = {"task_id": task_id} if task_id else None
        response = self._request("GET", "/api/v1/submissions", params=params)
        return [SubmissionInfo.model_validate(s) for s in response.json()]

    def team_status(self) -> TeamStatus:
        """The team's members, its limits, cooldowns and query budgets, and its submissions."""
        response = self._request("GET", "/api/v1/team/submissions")
        return TeamStatus.model_validate(response.json())

    def select(self, submission_id: str) -> SubmissionInfo:
        """Mark a submission as final (the private leaderboard uses the best selected one)."""
        response = self._request("POST", f"/api/v1/submissions/{submission_id}/select")
        return SubmissionInfo.model_validate(response.json())

    def unselect(self, submission_id: str) -> SubmissionInfo:
        """Remove a submission's final mark."""
        response = self._request("POST", f"/api/v1/submissions/{submission_id}/unselect")
        return SubmissionInfo.model_validate(response.json())

    def wait(
        self, submission_id: str, *, timeout: float = 300.0, interval: float = 0.5
    ) -> SubmissionInfo:
        """Poll until the submission is scored or failed."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.submission(submission_id)
            if info.status in (SubmissionStatus.SCORED, SubmissionStatus.FAILED):
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(
                    MSG_WAIT_TIMEOUT.format(
                        id=submission_id, status=info.status.value, seconds=timeout
                    )
                )
            time.sleep(interval)

    def query_status(self, task_id: str) -> QueryStatus:
        """A task's query format and limits, and the team's budget left (costs nothing)."""
        response = self._request("GET", f"/api/v1/tasks/{task_id}/query")
        status = QueryStatus.model_validate(response.json())
        self._max_rows[task_id] = status.max_batch
        return status

    def query(self, task_id: str, x: np.ndarray, *, max_wait: float = 60.0) -> QueryResult:
        """Send inputs to a task's victim; every row counts against the team's budget.

        ``x`` has shape ``(n, *input_shape)`` (:meth:`query_status` and the task's
        ``query.json`` give the shape); it is sent as float32 ``.npy`` and the outputs come
        back as ``.npy``. A batch larger than the task's ``max_batch`` is sent in several
        requests, after checking that the budget left covers all of it; a request refused by
        the task's rate limit is sent again after its ``Retry-After``, waiting at most
        ``max_wait`` seconds each time.

        Raises
        ------
        ArenaError
            With the status, the message and ``retry_after`` when the arena refuses a request
            (bad shape or values, budget, rate limit beyond ``max_wait``); a refused request
            costs nothing.
        """
        values = np.ascontiguousarray(x, dtype=np.float32)
        max_rows = self._max_rows.get(task_id)
        if max_rows is None or len(values) > max_rows:
            status = self.query_status(task_id)
            max_rows = status.max_batch
            if len(values) > max_rows and len(values) > status.queries_remaining:
                raise ArenaError(
                    429,
                    MSG_CLIENT_BUDGET.format(
                        n=len(values), remaining=status.queries_remaining, task_id=task_id
                    ),
                    remaining=status.queries_remaining,
                )
        results = [
            self._query_batch(task_id, values[start : start + max_rows], max_wait=max_wait)
            for start in range(0, max(len(values), 1), max_rows)
        ]
        outputs = (
            results[0].outputs
            if len(results) == 1
            else np.concatenate([r.outputs for r in results])
        )
        return QueryResult(outputs=outputs, remaining=results[-1].remaining, used=results[-1].used)

    def _query_batch(self, task_id: str, x: np.ndarray, *, max_wait: float) -> QueryResult:
        buffer = io.BytesIO()
        np.save(buffer, x, allow_pickle=False)
        while True:
            try:
                response = self._request(
                    "POST",
                    f"/api/v1/tasks/{task_id}/query",
                    content=buffer.getvalue(),
                    headers={"Content-Type": NPY_MEDIA_TYPE, "Accept": NPY_MEDIA_TYPE},
                )
                break
            except ArenaError as err:
                # A 429 while the budget still covers the batch is the rate limit: wait.
                rate_limited = (
                    err.status_code == 429
                    and err.remaining is not None
                    and err.remaining >= len(x)
                    and err.retry_after is not None
                    and err.retry_after <= max_wait
                )
                if not rate_limited:
                    raise
                assert err.retry_after is not None
                time.sleep(err.retry_after)
        try:
            outputs = np.load(io.BytesIO(response.content), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ArenaError(response.status_code, MSG_BAD_ANSWER.format(error=exc)) from None
        return QueryResult(
            outputs=outputs,
            remaining=_header_int(response, "X-Queries-Remaining"),
            used=_header_int(response, "X-Queries-Used"),
        )

    def leaderboard(self, task_id: str) -> Leaderboard:
        response = self._request("GET", f"/api/v1/tasks/{task_id}/leaderboard")
        return Leaderboard.model_validate(response.json())


def _header_int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    return int(value) if value is not None and value.isdigit() else None

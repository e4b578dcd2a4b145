"""A typed Python client of the arena's HTTP API.

>>> from trustlab.client import ArenaClient
>>> client = ArenaClient("http://127.0.0.1:8000", api_key="tl_...")  # doctest: +SKIP
>>> receipt = client.submit("mia-digits", "scores.csv")               # doctest: +SKIP
>>> client.wait(receipt.submission_id).public_score                   # doctest: +SKIP
0.31
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from trustlab.core.errors import TrustlabError
from trustlab.schemas import (
    Leaderboard,
    SubmissionAccepted,
    SubmissionInfo,
    SubmissionStatus,
    TaskDetail,
    TaskSummary,
)

MSG_UNREACHABLE = "Cannot reach the arena at {url}: {error}. Is the server running?"
MSG_WAIT_TIMEOUT = "Submission {id} is still {status} after {seconds:g} s."


class ArenaError(TrustlabError):
    """An error answer from the arena: its HTTP status, message and ``Retry-After``."""

    def __init__(self, status_code: int, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after


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
                response.status_code, detail, retry_after=float(retry) if retry else None
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

    def leaderboard(self, task_id: str) -> Leaderboard:
        response = self._request("GET", f"/api/v1/tasks/{task_id}/leaderboard")
        return Leaderboard.model_validate(response.json())

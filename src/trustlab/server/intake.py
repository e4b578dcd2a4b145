"""Admission control of ``POST /submit``: bounded uploads and bounded file checks.

One server process receives at most ``upload_slots`` uploads at once, at most
``team_upload_slots`` of them from one team, and checks at most ``intake_concurrency`` files
at once in sandboxes, one per team at a time. An upload that finds no free slot is refused at
once, before a byte of its body is read; a received file waits up to ``intake_queue_seconds``
for a check slot, first in its team's line, then in the shared one (both first come, first
served). Refusals caused by the arena's capacity are 503 with ``Retry-After``; only a team
that opens more uploads at once than it may gets 429. Neither stores anything nor counts
against the team.

The gate lives in the server's event loop: waiting for a slot holds no thread and no
database connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from trustlab.server.errors import ApiError, overloaded
from trustlab.server.settings import Settings

MSG_TEAM_UPLOADS = (
    "Your team already has {n} uploads in progress, the most it may send at once; this one "
    "was not read, stored or counted. Wait for their answers, then send it again (in {retry} "
    "s at the earliest)."
)
WHAT_UPLOADS = "it is receiving {n} uploads, its limit"
WHAT_CHECKS = "every one of its {n} file checkers stayed busy for {wait:g} s"
WHAT_TEAM_CHECK = "it checks one file per team at a time and your team's other file took {wait:g} s"


@dataclass
class _TeamLine:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class IntakeGate:
    """Slots for uploads and file checks of one server process.

    Parameters
    ----------
    upload_slots, team_upload_slots : int
        Uploads received at once, in all and per team.
    check_slots : int
        Files checked at once (sandboxes running intake checks).
    queue_seconds : float
        How long a received file may wait for a check slot before a 503.
    retry_after : int
        The ``Retry-After`` of refusals, in seconds.
    """

    def __init__(
        self,
        *,
        upload_slots: int,
        team_upload_slots: int,
        check_slots: int,
        queue_seconds: float,
        retry_after: int,
    ) -> None:
        self.upload_slots = upload_slots
        self.team_upload_slots = team_upload_slots
        self.check_slots = check_slots
        self.queue_seconds = queue_seconds
        self.retry_after = retry_after
        self.uploads = 0
        self.checks = 0
        self._team_uploads: dict[int, int] = {}
        self._checkers = asyncio.Semaphore(check_slots)
        self._lines: dict[int, _TeamLine] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeGate:
        return cls(
            upload_slots=settings.upload_slots,
            team_upload_slots=settings.team_upload_slots,
            check_slots=settings.intake_concurrency,
            queue_seconds=settings.intake_queue_seconds,
            retry_after=settings.retry_after_seconds,
        )

    @asynccontextmanager
    async def upload(self, team_id: int) -> AsyncIterator[None]:
        """Hold an upload slot; refused at once (429 for the team's own, 503) when none is free."""
        mine = self._team_uploads.get(team_id, 0)
        if mine >= self.team_upload_slots:
            raise ApiError(
                429,
                MSG_TEAM_UPLOADS.format(n=mine, retry=self.retry_after),
                headers={"Retry-After": str(self.retry_after)},
            )
        if self.uploads >= self.upload_slots:
            raise overloaded(WHAT_UPLOADS.format(n=self.uploads), retry=self.retry_after)
        self.uploads += 1
        self._team_uploads[team_id] = mine + 1
        try:
            yield
        finally:
            self.uploads -= 1
            left = self._team_uploads[team_id] - 1
            if left:
                self._team_uploads[team_id] = left
            else:
                del self._team_uploads[team_id]

    @asynccontextmanager
    async def check(self, team_id: int) -> AsyncIterator[None]:
        """Hold a check slot, waiting up to ``queue_seconds`` in all; 503 if none came free."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue_seconds
        line = self._lines.setdefault(team_id, _TeamLine())
        line.users += 1
        try:
            if not await _acquire(line.lock, deadline - loop.time()):
                raise overloaded(
                    WHAT_TEAM_CHECK.format(wait=self.queue_seconds), retry=self.retry_after
                )
            try:
                if not await _acquire(self._checkers, deadline - loop.time()):
                    raise overloaded(
                        WHAT_CHECKS.format(n=self.check_slots, wait=self.queue_seconds),
                        retry=self.retry_after,
                    )
                self.checks += 1
                try:
                    yield
                finally:
                    self.checks -= 1
                    self._checkers.release()
            finally:
                line.lock.release()
        finally:
            line.users -= 1
            if not line.users:
                self._lines.pop(team_id, None)


async def _acquire(slot: asyncio.Lock | asyncio.Semaphore, timeout: float) -> bool:
    """Acquire ``slot``, waiting at most ``timeout`` seconds; whether it was acquired.

    A free slot is taken even when no time is left (``wait_for`` with a zero timeout would
    cancel the acquisition before it ran).
    """
    if timeout <= 0 and slot.locked():
        return False
    try:
        await asyncio.wait_for(slot.acquire(), timeout=max(timeout, 0.05))
    except asyncio.TimeoutError:
        return False
    return True

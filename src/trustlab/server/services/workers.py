"""Workers' heartbeats, kept in the database for the staff page."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from trustlab.server.db import write_session
from trustlab.server.models import WorkerBeat, utcnow


def beat(
    sessions: sessionmaker[Session],
    *,
    name: str,
    device: str,
    current: str | None,
    finished: bool = False,
) -> None:
    """Record that worker ``name`` is alive (and what it is scoring)."""
    with write_session(sessions) as session:
        row = session.get(WorkerBeat, name, with_for_update=True)
        now = utcnow()
        if row is None:
            row = WorkerBeat(name=name, device=device, started_at=now, jobs=0)
            session.add(row)
        row.device = device
        row.last_heartbeat = now
        row.current_submission = current
        if finished:
            row.jobs = (row.jobs or 0) + 1


def list_workers(session: Session) -> list[WorkerBeat]:
    return list(session.scalars(select(WorkerBeat).order_by(WorkerBeat.last_heartbeat.desc())))

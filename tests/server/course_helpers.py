"""Helpers for the course-operation tests: submissions written straight into the database."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from helpers import ArenaHarness
from sqlalchemy import select

from trustlab.server.db import write_session
from trustlab.server.models import Submission, SubmissionScore, Team, utcnow

TASK = "mia-small"
METRIC = "tpr@0.05"


def add_scored(
    harness: ArenaHarness,
    *,
    team: str,
    public: float,
    private: float,
    ci: tuple[float, float] | None = None,
    private_ci: tuple[float, float] | None = None,
    ago: float = 3600.0,
    selected: bool = False,
    phase: str | None = None,
    status: str = "scored",
    task_id: str = TASK,
) -> str:
    """A scored submission of ``team`` made ``ago`` seconds ago, with bootstrap intervals."""
    now = utcnow()
    public_metrics: dict[str, Any] = {METRIC: public}
    private_metrics: dict[str, Any] = {METRIC: private}
    if ci is not None:
        public_metrics[f"{METRIC}_ci95"] = list(ci)
    if private_ci is not None:
        private_metrics[f"{METRIC}_ci95"] = list(private_ci)
    sid = uuid.uuid4().hex
    with write_session(harness.arena.sessions) as session:
        team_id = session.scalar(select(Team.id).where(Team.name == team))
        assert team_id is not None
        scored = status == "scored"
        session.add(
            Submission(
                id=sid,
                task_id=task_id,
                team_id=team_id,
                created_at=now - timedelta(seconds=ago),
                status=status,
                filename="scores.csv",
                path=f"{task_id}/{sid}/file.csv",
                size=10,
                sha256="0" * 64,
                fields={},
                summary={},
                public_score=public if scored else None,
                private_score=private if scored else None,
                public_metrics=public_metrics if scored else None,
                private_metrics=private_metrics if scored else None,
                error=None if scored else "broken",
                finished_at=now - timedelta(seconds=ago - 1),
                selected=selected,
                phase=phase,
                score_version=1 if scored else 0,
            )
        )
        session.flush()
        if scored:
            session.add(
                SubmissionScore(
                    submission_id=sid,
                    version=1,
                    public_score=public,
                    private_score=private,
                    public_metrics=public_metrics,
                    private_metrics=private_metrics,
                )
            )
    return sid


def at(hours: float) -> datetime:
    """A moment ``hours`` from now (negative: in the past)."""
    return utcnow() + timedelta(hours=hours)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

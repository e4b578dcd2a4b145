"""A team's status: its members, its standing with each task, and all its submissions."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trustlab.schemas import TaskLimits, TeamStatus
from trustlab.server.errors import ApiError
from trustlab.server.models import QueryAccount, Submission, Team
from trustlab.server.services import submissions as intake
from trustlab.server.services.tasks import ServedTask
from trustlab.server.services.teams import members_of


def task_limits(session: Session, *, task: ServedTask, team: Team, now: datetime) -> TaskLimits:
    """What the team has used of ``task``'s limits, and whether (and when) it may submit."""
    spec = task.built.spec
    rules = intake.rules_now(task, now)
    today, total = intake.usage(session, task=task, team=team, now=now)
    blocked, ready = None, None
    try:
        intake.check_open(task, now)
        intake.check_rules(session, task=task, team=team, now=now)
    except ApiError as exc:
        blocked = exc.detail
        retry = exc.headers.get("Retry-After")
        if retry is not None and retry.isdigit() and exc.status_code == 429:
            ready = now + timedelta(seconds=int(retry))
    mine = (Submission.task_id == task.id) & (Submission.team_id == team.id)
    count = session.scalar(select(func.count()).select_from(Submission).where(mine)) or 0
    selected = (
        session.scalar(
            select(func.count()).select_from(Submission).where(mine & Submission.selected)
        )
        or 0
    )
    budget = spec.params.get("query_budget")
    used = None
    if isinstance(budget, int):
        used = session.scalar(
            select(QueryAccount.used)
            .where(QueryAccount.task_id == task.id)
            .where(QueryAccount.team_id == team.id)
        )
        used = int(used or 0)
    return TaskLimits(
        task_id=task.id,
        title=spec.title,
        phase=rules.phase,
        deadline=spec.deadline,
        closed=task.is_closed(now),
        submissions=int(count),
        daily_used=today,
        daily_limit=rules.daily,
        total_used=total,
        total_limit=rules.total,
        next_submission_at=ready,
        blocked=blocked,
        selected=int(selected),
        final_selections=spec.final_selections,
        queries_used=used,
        query_budget=budget if isinstance(budget, int) else None,
    )


def team_status(
    session: Session, *, team: Team, tasks: list[ServedTask], now: datetime
) -> TeamStatus:
    """Everything the team's status page shows."""
    return TeamStatus(
        team=team.name,
        members=[m.name for m in members_of(session, team)],
        tasks=[task_limits(session, task=t, team=team, now=now) for t in tasks],
        submissions=intake.team_submissions(
            session, team=team, tasks={t.id: t for t in tasks}, now=now
        ),
    )

"""Leaderboards: each team's best public submission; private scores after the deadline.

Before the deadline a team's entry is its submission with the best public score (the earliest
one on a tie) and teams are ranked by it. After the deadline the same submission's private
score is shown and ranks the teams, as on Kaggle when no final submission is chosen: picking
the best private score instead would select on the hidden part and overstate every team.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from trustlab.schemas import Leaderboard, LeaderboardEntry, SubmissionStatus
from trustlab.server.models import Submission, Team
from trustlab.server.services.tasks import ServedTask


def leaderboard(session: Session, *, task: ServedTask, now: datetime) -> Leaderboard:
    spec, kind = task.built.spec, task.built.kind
    higher = kind.higher_is_better
    final = task.is_closed(now)
    rows = session.execute(
        select(Submission, Team.name)
        .join(Team, Team.id == Submission.team_id)
        .where(Submission.task_id == task.id)
        .where(Submission.status == SubmissionStatus.SCORED.value)
        .order_by(Submission.created_at, Submission.id)
    ).all()
    best: dict[str, Submission] = {}
    counts: dict[str, int] = {}
    for sub, team in rows:
        counts[team] = counts.get(team, 0) + 1
        current = best.get(team)
        assert sub.public_score is not None
        if current is None or _better(sub.public_score, current.public_score, higher):
            best[team] = sub

    def key(item: tuple[str, Submission]) -> tuple[float, datetime]:
        sub = item[1]
        score = sub.private_score if final else sub.public_score
        assert score is not None
        return (-score if higher else score, sub.created_at)

    entries = []
    for rank, (team, sub) in enumerate(sorted(best.items(), key=key), start=1):
        assert sub.public_score is not None
        entries.append(
            LeaderboardEntry(
                rank=rank,
                team=team,
                public_score=sub.public_score,
                private_score=sub.private_score if final else None,
                submissions=counts[team],
                submitted_at=sub.created_at,
            )
        )
    return Leaderboard(
        task_id=task.id,
        title=spec.title,
        metric=spec.metric or kind.default_metric(spec),
        higher_is_better=higher,
        deadline=spec.deadline,
        final=final,
        entries=entries,
    )


def _better(score: float, current: float | None, higher: bool) -> bool:
    if current is None:
        return True
    return score > current if higher else score < current

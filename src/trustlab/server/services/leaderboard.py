"""Leaderboards: each team's best public submission; after the deadline, its final choice.

Before the deadline a team's entry is its submission with the best public score as the team
may see it (the earliest one on a tie; a blind phase's submissions and the Ladder are applied
as :mod:`~trustlab.server.services.scores` says) and teams are ranked by it. After the
deadline each team is ranked by the private score of its final choice, Kaggle's rule: the best
private score among the submissions the team selected as final, or, where it selected none,
the private score of its best public submission. Picking the best private score of all its
submissions instead would select on the hidden part and overstate every team.

Each score is shown with the bootstrap interval the task's kind reported for it
(``<metric>_ci95``), and teams whose intervals overlap the interval of the first team of a
group are ranked as ties (competition ranking: 1, 1, 3): a grade should not hinge on noise.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from trustlab.schemas import Leaderboard, LeaderboardEntry, SubmissionStatus
from trustlab.server.models import Submission, Team
from trustlab.server.services.scores import interval, shown_scores
from trustlab.server.services.tasks import ServedTask

MSG_SELECTION_RULE = (
    "Final choice: each team may mark up to {k} of its submissions as final (POST "
    "/api/v1/submissions/{{id}}/select, or 'trustlab select ID'). After the deadline the "
    "private leaderboard ranks each team by the best private score among its selected "
    "submissions, or, where a team selected none, by the private score of its best public "
    "submission. Teams whose 95% bootstrap intervals overlap are ranked as ties."
)


def selection_rule(task: ServedTask) -> str:
    return MSG_SELECTION_RULE.format(k=task.built.spec.final_selections)


@dataclass(frozen=True)
class Choice:
    """The submission a team is ranked by, and the score and interval shown for it."""

    sub: Submission
    score: float
    public_score: float
    public_interval: list[float] | None
    private_interval: list[float] | None
    selected: bool


def _better(score: float, current: float | None, higher: bool) -> bool:
    if current is None:
        return True
    return score > current if higher else score < current


def _best(subs: list[Submission], score_of: dict[str, float], higher: bool) -> Submission | None:
    best: Submission | None = None
    for sub in subs:  # in submission order: the earliest wins a tie
        if sub.id in score_of and (
            best is None or _better(score_of[sub.id], score_of[best.id], higher)
        ):
            best = sub
    return best


def final_choice(subs: list[Submission], *, higher: bool) -> tuple[Submission | None, bool]:
    """Kaggle's rule on one team's scored submissions: ``(submission, was it selected)``."""
    chosen = [s for s in subs if s.selected and s.private_score is not None]
    if chosen:
        private = {s.id: float(s.private_score or 0.0) for s in chosen}
        return _best(chosen, private, higher), True
    public = {s.id: float(s.public_score) for s in subs if s.public_score is not None}
    return _best(subs, public, higher), False


def team_choices(
    session: Session, *, task: ServedTask, now: datetime, final: bool | None = None
) -> tuple[dict[str, Choice], dict[str, int]]:
    """Each team's ranked submission (by team name) and its number of scored submissions.

    ``final`` (default: whether the deadline has passed) picks the private board's rule.
    """
    kind = task.built.kind
    metric = task.built.spec.metric or kind.default_metric(task.built.spec)
    higher = kind.higher_is_better
    final = task.is_closed(now) if final is None else final
    rows = session.execute(
        select(Submission, Team.name)
        .join(Team, Team.id == Submission.team_id)
        .where(Submission.task_id == task.id)
        .where(Submission.public_score.is_not(None))
        .where(Submission.status != SubmissionStatus.FAILED.value)
        .order_by(Submission.created_at, Submission.id)
    ).all()
    by_team: dict[str, list[Submission]] = defaultdict(list)
    for sub, team in rows:
        by_team[team].append(sub)
    choices: dict[str, Choice] = {}
    counts = {team: len(subs) for team, subs in by_team.items()}
    for team, subs in by_team.items():
        if final:
            chosen, selected = final_choice(subs, higher=higher)
            if chosen is None or chosen.private_score is None or chosen.public_score is None:
                continue
            choices[team] = Choice(
                sub=chosen,
                score=float(chosen.private_score),
                public_score=float(chosen.public_score),
                public_interval=interval(chosen.public_metrics, metric),
                private_interval=interval(chosen.private_metrics, metric),
                selected=selected,
            )
            continue
        shown = shown_scores(task, subs, now)
        score_of = {
            s.id: float(v.public_score)
            for s in subs
            if (v := shown[s.id]).visible and v.public_score is not None
        }
        best = _best(subs, score_of, higher)
        if best is None:
            continue
        metrics = shown[best.id].metrics
        choices[team] = Choice(
            sub=best,
            score=score_of[best.id],
            public_score=score_of[best.id],
            public_interval=interval(metrics, metric),
            private_interval=None,
            selected=best.selected,
        )
    return choices, counts


def _overlap(a: list[float] | None, b: list[float] | None, sa: float, sb: float) -> bool:
    if a is None or b is None:
        return sa == sb
    return a[0] <= b[1] and b[0] <= a[1]


def leaderboard(
    session: Session, *, task: ServedTask, now: datetime, final: bool | None = None
) -> Leaderboard:
    """The task's board as of ``now``; ``final=True`` gives the private board before the
    deadline (for the staff's grade export, never for teams)."""
    spec, kind = task.built.spec, task.built.kind
    higher = kind.higher_is_better
    final = task.is_closed(now) if final is None else final
    choices, counts = team_choices(session, task=task, now=now, final=final)

    def key(item: tuple[str, Choice]) -> tuple[float, datetime, str]:
        choice = item[1]
        return (-choice.score if higher else choice.score, choice.sub.created_at, item[0])

    entries: list[LeaderboardEntry] = []
    leader: Choice | None = None
    rank = 0
    for position, (team, choice) in enumerate(sorted(choices.items(), key=key), start=1):
        shown = choice.private_interval if final else choice.public_interval
        tied = False
        if leader is not None:
            lead = leader.private_interval if final else leader.public_interval
            tied = _overlap(lead, shown, leader.score, choice.score)
        if not tied:
            leader, rank = choice, position
        entries.append(
            LeaderboardEntry(
                rank=rank,
                team=team,
                public_score=choice.public_score,
                private_score=choice.score if final else None,
                submissions=counts[team],
                submitted_at=choice.sub.created_at,
                public_interval=choice.public_interval,
                private_interval=choice.private_interval if final else None,
                selected=choice.selected,
            )
        )
    _mark_group_heads(entries)
    phase = spec.phase_at(now)
    return Leaderboard(
        task_id=task.id,
        title=spec.title,
        metric=spec.metric or kind.default_metric(spec),
        higher_is_better=higher,
        deadline=spec.deadline,
        final=final,
        entries=entries,
        phase=phase.name if phase is not None else None,
        selection_rule=selection_rule(task),
        ladder_step=spec.ladder.step if spec.ladder is not None and not final else None,
    )


def _mark_group_heads(entries: list[LeaderboardEntry]) -> None:
    """Every member of a tie group, its first entry included, is marked ``tied``."""
    shared: dict[int, int] = defaultdict(int)
    for entry in entries:
        shared[entry.rank] += 1
    for entry in entries:
        entry.tied = shared[entry.rank] > 1

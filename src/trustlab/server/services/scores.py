"""What a team may see of its scores before the deadline: blind phases and the Ladder.

Two rules hold a public score back:

- a submission made in a phase whose ``split`` is ``private`` (a blind final phase) shows no
  score until that phase ends;
- a task with a ``ladder`` shows, instead of each public score, the Ladder's released score
  (Blum & Hardt, "The Ladder: A Reliable Leaderboard for Machine Learning Competitions",
  ICML 2015, Algorithm 1): a team's released score changes only when a submission beats the
  team's released best by more than the step ``eta``, and is then the new score rounded to a
  multiple of ``eta``. The first scored submission is always released (rounded). The Ladder is
  applied to each team's submissions in the order they were made; Blum & Hardt state it with a
  loss, here the direction follows the task's metric. Under the Ladder the public metrics
  (which would leak the same holdout) are withheld too until the deadline.

After the deadline everything is shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trustlab.schemas import SubmissionStatus
from trustlab.server.models import Submission
from trustlab.server.services.tasks import ServedTask

MSG_BLIND = "Scored; this phase ({phase}) is blind: its scores are shown when it ends, at {end}."
MSG_LADDER = (
    "This task uses the Ladder (step {step:g}): the public score shown is your best so far, "
    "rounded to {step:g}, and moves only when a submission beats it by more than {step:g}. "
    "Public metrics are shown after the deadline."
)


def ladder_release(scores: Sequence[float], *, step: float, higher_is_better: bool) -> list[float]:
    """The Ladder's released score after each of ``scores`` (one team, in order).

    >>> ladder_release([0.50, 0.505, 0.53, 0.52], step=0.01, higher_is_better=True)
    [0.5, 0.5, 0.53, 0.53]
    """
    released: list[float] = []
    best: float | None = None
    for score in scores:
        gain = math.inf if best is None else (score - best if higher_is_better else best - score)
        if gain > step:
            best = round(round(score / step) * step, 12)
        assert best is not None
        released.append(best)
    return released


def _phase_of(task: ServedTask, name: str | None) -> Any:
    if name is None:
        return None
    return next((p for p in task.built.spec.phases if p.name == name), None)


def blind_until(task: ServedTask, sub: Submission, now: datetime) -> datetime | None:
    """When the scores of ``sub`` become visible, if they are held back now; else None."""
    phase = _phase_of(task, sub.phase)
    if phase is None or phase.split != "private" or task.is_closed(now) or now >= phase.end:
        return None
    end: datetime = phase.end
    return end


@dataclass(frozen=True)
class Shown:
    """A submission's public score and metrics as its team (and the board) may see them."""

    public_score: float | None
    metrics: dict[str, Any]
    note: str | None = None
    visible: bool = True


def shown_scores(task: ServedTask, subs: Sequence[Submission], now: datetime) -> dict[str, Shown]:
    """What each of one team's submissions to ``task`` shows now (``subs`` in any order)."""
    ordered = sorted(subs, key=lambda s: (s.created_at, s.id))
    final = task.is_closed(now)
    ladder = task.built.spec.ladder
    out: dict[str, Shown] = {}
    visible = []
    for sub in ordered:
        until = blind_until(task, sub, now)
        if until is not None:
            note = MSG_BLIND.format(phase=sub.phase, end=until.isoformat())
            done = sub.status == SubmissionStatus.SCORED.value
            out[sub.id] = Shown(None, {}, note if done else None, visible=False)
        else:
            visible.append(sub)
    scored = [s for s in visible if s.public_score is not None and s.status != "failed"]
    released: dict[str, float] = {}
    if ladder is not None and not final and scored:
        values = ladder_release(
            [float(s.public_score or 0.0) for s in scored],
            step=ladder.step,
            higher_is_better=task.built.kind.higher_is_better,
        )
        released = {s.id: v for s, v in zip(scored, values, strict=True)}
    for sub in visible:
        if ladder is not None and not final:
            out[sub.id] = Shown(
                released.get(sub.id), {}, MSG_LADDER.format(step=ladder.step), visible=True
            )
        else:
            out[sub.id] = Shown(sub.public_score, dict(sub.public_metrics or {}))
    return out


def interval(metrics: dict[str, Any] | None, metric: str) -> list[float] | None:
    """The ``[low, high]`` bootstrap interval of ``metric`` a kind reported, if any."""
    value = (metrics or {}).get(f"{metric}_ci95")
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
    ):
        return [float(value[0]), float(value[1])]
    return None

"""The job queue: leases, fencing tokens, retries, and workers that stop or crash."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import STRESS_TASK, ArenaHarness, install_task, oracle_csv, random_csv
from sqlalchemy import select, update
from stress_kind import directive

from trustlab.server.db import write_session
from trustlab.server.models import Submission, utcnow
from trustlab.server.services import queue
from trustlab.server.worker import Worker

TASK = "mia-small"
SUPPORT = Path(__file__).parents[1] / "support"


def _claim(harness: ArenaHarness, worker: str, lease: float = 30.0) -> queue.Claim | None:
    return queue.claim_next(
        harness.arena.sessions, worker=worker, lease_seconds=lease, max_attempts=3
    )


def _row(harness: ArenaHarness, sub: str) -> Submission:
    with harness.arena.sessions() as session:
        row = session.get(Submission, sub)
        assert row is not None
        return row


def test_jobs_are_claimed_oldest_first_and_once(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    subs = [
        harness.submit(TASK, random_csv(small_task_dir, i), team=t).json()["submission_id"]
        for i, t in enumerate(["alpha", "beta"])
    ]
    first, second = _claim(harness, "w1"), _claim(harness, "w2")
    assert first is not None and second is not None
    assert [first.submission_id, second.submission_id] == subs
    assert _claim(harness, "w3") is None
    assert _row(harness, subs[0]).status == "running"


def test_an_expired_lease_is_taken_over_and_the_late_result_dropped(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    sub = harness.submit(TASK, oracle_csv(small_task_dir)).json()["submission_id"]
    stale = _claim(harness, "dead", lease=0.05)
    assert stale is not None
    time.sleep(0.1)
    with_lease = _claim(harness, "alive")
    assert with_lease is not None and with_lease.submission_id == sub
    assert with_lease.attempt == 2
    result = {"public_score": 0.5, "private_score": 0.5}
    assert queue.complete(harness.arena.sessions, stale, result) is False
    assert queue.complete(harness.arena.sessions, with_lease, result) is True
    row = _row(harness, sub)
    assert (row.status, row.public_score, row.attempts, row.worker) == ("scored", 0.5, 2, "alive")
    # The stale worker can no longer renew, fail or release the job either.
    try:
        queue.renew(harness.arena.sessions, stale, lease_seconds=30)
        raise AssertionError("renew should have raised")
    except queue.LostClaim:
        pass
    assert queue.fail(harness.arena.sessions, stale, error="x", retry=False) is False
    assert _row(harness, sub).status == "scored"


def test_a_job_that_keeps_crashing_fails_after_max_attempts(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    sub = harness.submit(TASK, random_csv(small_task_dir)).json()["submission_id"]
    for _ in range(3):
        claim = _claim(harness, "w", lease=0.01)
        assert claim is not None
        time.sleep(0.03)
    assert _claim(harness, "w") is None
    row = _row(harness, sub)
    assert row.status == "failed" and "3 attempts" in (row.error or "")


def test_many_workers_claim_each_job_exactly_once(
    harness_factory,
    small_task_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    harness = harness_factory()
    for i in range(4):
        harness.add_team(f"team{i}")
    subs = set()
    for team in ["alpha", "beta", "team0", "team1", "team2", "team3"]:
        subs.add(
            harness.submit(TASK, random_csv(small_task_dir), team=team).json()["submission_id"]
        )
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(name: str) -> None:
        while (claim := _claim(harness, name)) is not None:
            with lock:
                claimed.append(claim.submission_id)

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(subs)


def test_a_file_that_breaks_after_intake_fails_without_retry(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    sub = harness.submit(TASK, random_csv(small_task_dir)).json()["submission_id"]
    stored = harness.settings.submissions_dir / _row(harness, sub).path
    stored.write_text("id,score\n0,oops\n")
    harness.score_all()
    row = _row(harness, sub)
    assert row.status == "failed" and row.attempts == 1
    assert "not a number" in (row.error or "")
    info = harness.client.get(f"/api/v1/submissions/{sub}", headers=harness.headers()).json()
    assert info["status"] == "failed" and "not a number" in info["error"]


@pytest.mark.slow
def test_a_stopping_worker_gives_its_job_back(
    harness: ArenaHarness,
    slow_task_dir: Path,
    small_task_dir: Path,
) -> None:
    install_task(slow_task_dir, harness.settings.data_dir)
    harness.arena.refresh_tasks()
    response = harness.submit("mia-slow", random_csv(small_task_dir))
    assert response.status_code == 202, response.text
    sub = response.json()["submission_id"]
    worker = Worker(harness.settings)
    worker.arena.start()
    claim = _claim(harness, worker.name)
    assert claim is not None
    threading.Timer(0.5, worker.stop.set).start()  # Ctrl-C in the middle of scoring
    worker.process(claim)
    row = _row(harness, sub)  # given back untouched: no attempt counted, no claim kept
    assert (row.status, row.attempts, row.claim_token) == ("queued", 0, None)
    # The second worker is a process of its own: its scoring children see the log variable
    # (this process's fork server may have started before the test set it).
    settings = harness.settings
    env = {
        **os.environ,
        "TRUSTLAB_DATA_DIR": str(settings.data_dir),
        "TRUSTLAB_DATABASE_URL": settings.db_url,
        "TRUSTLAB_PLUGINS": ",".join(settings.plugins),
        "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-m", "trustlab", "worker", "--idle-exit"],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert _row(harness, sub).status == "scored"


def test_failed_scoring_does_not_count_against_limits(
    harness_factory,
    small_task_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    harness = harness_factory(
        limits={"daily": None, "total": 1}, cooldown={"accepted": 0, "failed": 0}
    )
    sub = harness.submit(TASK, random_csv(small_task_dir)).json()["submission_id"]
    with write_session(harness.arena.sessions) as session:
        session.execute(
            update(Submission)
            .where(Submission.id == sub)
            .values(status="failed", created_at=utcnow() - timedelta(seconds=1))
        )
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 202
    with harness.arena.sessions() as session:
        statuses = sorted(session.scalars(select(Submission.status)))
    assert statuses == ["failed", "queued"]


def test_jobs_are_claimed_round_robin_across_teams(
    harness_factory: Callable[..., ArenaHarness], small_task_dir: Path
) -> None:
    harness = harness_factory()
    harness.add_team("gamma")
    body = random_csv(small_task_dir)
    # alpha queues a backlog first; beta and gamma submit one job each afterwards.
    order = ["alpha"] * 4 + ["beta", "gamma"]
    team_of = {}
    for team in order:
        response = harness.submit(TASK, body, team=team)
        assert response.status_code == 202, response.text
        team_of[response.json()["submission_id"]] = team
    # One worker holds alpha's first job as long as it likes (a pathological model) ...
    held = _claim(harness, "w1")
    assert held is not None and team_of[held.submission_id] == "alpha"
    # ... and the others get beta's and gamma's jobs before alpha's second.
    served = []
    while (claim := _claim(harness, "w2")) is not None:
        served.append(team_of[claim.submission_id])
    assert served == ["beta", "gamma", "alpha", "alpha", "alpha"]


def test_a_new_teams_job_waits_for_at_most_one_job_of_a_busy_team(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    body = random_csv(small_task_dir)
    for _ in range(3):
        assert harness.submit(TASK, body).status_code == 202
    first = _claim(harness, "w")
    assert first is not None
    queue.complete(harness.arena.sessions, first, {"public_score": 0.1, "private_score": 0.1})
    late = harness.submit(TASK, body, team="beta").json()["submission_id"]
    second = _claim(harness, "w")
    assert second is not None and second.submission_id == late


def test_a_scoring_over_its_cpu_limit_fails_once_and_starts_the_failed_cooldown(
    stress_arena: Callable[..., ArenaHarness], small_task_dir: Path
) -> None:
    harness = stress_arena(
        spec={"cooldown": {"accepted": 0, "failed": 600}},
        scoring_limits={"cpu_seconds": 1, "reference_cpu_seconds": 0.2, "factor": 5},
    )
    info = harness.client.get(f"/api/v1/tasks/{STRESS_TASK}").json()
    assert "Scoring limit: 1 s of CPU time per submission (5 x the 0.20 s" in info["description"]
    response = harness.submit(STRESS_TASK, directive("spin-score"))
    assert response.status_code == 202, response.text
    sub = response.json()["submission_id"]
    assert harness.score_all() == 1
    row = _row(harness, sub)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "CPU-time limit of 1 s (5 x the 0.20 s" in (row.error or "")
    assert "will not be retried" in (row.error or "")
    again = harness.submit(STRESS_TASK, random_csv(small_task_dir))
    assert again.status_code == 429 and "after a failed one" in again.json()["detail"]


def test_a_crashing_scorer_is_retried_then_given_up(
    stress_arena: Callable[..., ArenaHarness],
) -> None:
    harness = stress_arena()
    sub = harness.submit(STRESS_TASK, directive("crash-score")).json()["submission_id"]
    harness.score_all()
    row = _row(harness, sub)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "3 attempts" in (row.error or "") and "exit code 3" in (row.error or "")

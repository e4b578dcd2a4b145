"""The job queue: leases, fencing tokens, retries, and workers that stop or crash."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import ArenaHarness, install_task, oracle_csv, random_csv
from sqlalchemy import select, update

from trustlab.server.db import write_session
from trustlab.server.models import Submission, utcnow
from trustlab.server.services import queue
from trustlab.server.worker import Worker

TASK = "mia-small"


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


def test_a_stopping_worker_gives_its_job_back(
    harness: ArenaHarness,
    slow_task_dir: Path,
    small_task_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "scored.log"
    monkeypatch.setenv("TRUSTLAB_TEST_SCORE_LOG", str(log))
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
    assert not log.exists()  # the scoring was interrupted, not waited for
    row = _row(harness, sub)
    assert (row.status, row.attempts, row.claim_token) == ("queued", 0, None)
    assert Worker(harness.settings).run(idle_exit=True) == 1
    assert _row(harness, sub).status == "scored"
    assert log.read_text().splitlines() == [sub]  # scored once, by the second worker


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

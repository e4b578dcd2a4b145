"""Celery dispatch: jobs flow through the broker, survive a killed worker, and are never scored
twice. Runs where TRUSTLAB_TEST_REDIS_URL (and TRUSTLAB_TEST_AMQP_URL, for RabbitMQ) name a
broker."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ArenaHarness, ProcessGroup, install_task, oracle_csv, start_harness

from trustlab.server.dispatch import Publisher, redispatch_once
from trustlab.server.settings import Settings

BROKERS = {
    "redis": os.environ.get("TRUSTLAB_TEST_REDIS_URL"),
    "amqp": os.environ.get("TRUSTLAB_TEST_AMQP_URL"),
}
SUPPORT = Path(__file__).parents[1] / "support"
pytestmark = pytest.mark.slow


@pytest.fixture(params=["redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    url = BROKERS[request.param]
    if not url:
        pytest.skip(f"TRUSTLAB_TEST_{request.param.upper()}_URL is not set")
    return url


@pytest.fixture
def celery_settings(make_settings: Callable[..., Settings], broker_url: str) -> Iterator[Settings]:
    queue = f"trustlab-test-{uuid.uuid4().hex[:8]}"
    yield make_settings(
        dispatch="celery", broker_url=broker_url, celery_queue=queue, lease_seconds=3.0
    )
    from kombu import Connection

    with Connection(broker_url) as connection:
        connection.default_channel.queue_delete(queue)


class CeleryWorker(ProcessGroup):
    def __init__(self, settings: Settings, log: Path, score_log: Path) -> None:
        env = {
            **os.environ,
            "TRUSTLAB_DATA_DIR": str(settings.data_dir),
            "TRUSTLAB_DATABASE_URL": settings.db_url,
            "TRUSTLAB_DISPATCH": "celery",
            "TRUSTLAB_BROKER_URL": settings.broker_url,
            "TRUSTLAB_CELERY_QUEUE": settings.celery_queue,
            "TRUSTLAB_LEASE_SECONDS": str(settings.lease_seconds),
            "TRUSTLAB_PLUGINS": "slow_kind",
            "TRUSTLAB_TEST_SCORE_LOG": str(score_log),
            "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")]),
        }
        super().__init__(["worker", "--celery"], env=env, log=log)


@pytest.fixture
def celery_arena(
    celery_settings: Settings,
    small_task_dir: Path,
    slow_task_dir: Path,
    tmp_path: Path,
) -> Iterator[tuple[ArenaHarness, CeleryWorker, Path]]:
    install_task(small_task_dir, celery_settings.data_dir)
    install_task(slow_task_dir, celery_settings.data_dir)
    harness = start_harness(celery_settings)()
    score_log = tmp_path / "scored.log"
    worker = CeleryWorker(celery_settings, tmp_path / "celery.log", score_log)
    yield harness, worker, score_log
    worker.stop()
    harness.client.__exit__(None, None, None)


def _wait(harness: ArenaHarness, sub: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info = harness.client.get(f"/api/v1/submissions/{sub}", headers=harness.headers()).json()
        if info["status"] == status:
            return dict(info)
        assert time.monotonic() < deadline, info
        time.sleep(0.2)


@pytest.mark.parametrize("broker_url", ["redis", "amqp"], indirect=True)
def test_submissions_flow_through_the_broker(
    celery_arena: tuple[ArenaHarness, CeleryWorker, Path], small_task_dir: Path
) -> None:
    harness, worker, _ = celery_arena
    worker.start()
    response = harness.submit("mia-small", oracle_csv(small_task_dir))
    assert response.status_code == 202
    info = _wait(harness, response.json()["submission_id"], "scored")
    assert info["public_score"] == 1.0


def test_a_killed_celery_worker_loses_nothing_and_scores_once(
    celery_arena: tuple[ArenaHarness, CeleryWorker, Path], small_task_dir: Path
) -> None:
    harness, worker, score_log = celery_arena
    worker.start()
    sub = harness.submit("mia-slow", oracle_csv(small_task_dir)).json()["submission_id"]
    _wait(harness, sub, "running")
    worker.kill()
    assert not score_log.exists()

    worker.start()
    settings = harness.settings
    publisher = Publisher(settings)
    deadline = time.monotonic() + 30
    while redispatch_once(settings, harness.arena.sessions, publisher) == 0:
        assert time.monotonic() < deadline, "the orphaned job was never redispatched"
        time.sleep(0.5)
    info = _wait(harness, sub, "scored", timeout=90)
    assert info["public_score"] == 1.0
    assert score_log.read_text().split() == [sub]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unreachable_broker_does_not_lose_a_submission(
    make_settings: Callable[..., Settings], small_task_dir: Path
) -> None:
    settings = make_settings(dispatch="celery", broker_url="redis://127.0.0.1:1/0")
    install_task(small_task_dir, settings.data_dir)
    harness = start_harness(settings)()
    try:
        response = harness.submit("mia-small", oracle_csv(small_task_dir))
        assert response.status_code == 202
        sub = response.json()["submission_id"]
        assert harness.count_rows() == 1
        from trustlab.server.services import queue

        assert queue.due_for_dispatch(harness.arena.sessions, redispatch_seconds=300) == [sub]
        assert queue.due_for_dispatch(harness.arena.sessions, redispatch_seconds=300) == []
    finally:
        harness.client.__exit__(None, None, None)

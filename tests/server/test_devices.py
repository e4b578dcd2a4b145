"""Scoring devices: GPU-only tasks go to GPU workers; a worker without a GPU refuses them."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from helpers import ArenaHarness, random_csv

from trustlab.core.errors import ConfigurationError
from trustlab.server.dispatch import redispatch_once
from trustlab.server.models import Submission, WorkerBeat
from trustlab.server.services import devices, queue
from trustlab.server.settings import Settings
from trustlab.server.worker import Worker
from trustlab.tasks.spec import DEVICE_ENV, parse_spec, scoring_device

TASK = "mia-small"


def test_a_cuda_worker_without_a_gpu_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    with pytest.raises(ConfigurationError, match="no usable CUDA GPU"):
        devices.resolve_device("cuda")
    assert devices.resolve_device("auto") == "cpu"
    assert devices.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(devices, "has_gpu", lambda: True)
    assert devices.resolve_device("auto") == "cuda"


def test_gpu_tasks_are_routed_to_the_gpu_queue() -> None:
    settings = Settings(celery_queue="cpu-q", gpu_queue="gpu-q")
    assert devices.queue_for(settings, {"device": "cuda"}) == "gpu-q"
    assert devices.queue_for(settings, {"device": "cpu"}) == "cpu-q"
    assert devices.queue_for(settings, {}) == "cpu-q"
    assert devices.job_device({"device": None}, "cuda") == "cuda"
    assert devices.job_device({"device": "cpu"}, "cuda") == "cpu"


def test_scoring_device_follows_the_spec_then_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from specs import SMALL_SPEC

    monkeypatch.setenv(DEVICE_ENV, "cuda")
    assert scoring_device(parse_spec(SMALL_SPEC)) == "cuda"
    assert scoring_device(parse_spec(dict(SMALL_SPEC, device="cpu"))) == "cpu"
    monkeypatch.delenv(DEVICE_ENV)
    assert scoring_device(parse_spec(SMALL_SPEC)) == "cpu"
    assert "device" not in parse_spec(SMALL_SPEC).to_yaml()


@pytest.fixture
def gpu_harness(harness_factory: Any) -> ArenaHarness:
    harness: ArenaHarness = harness_factory(device="cuda")
    return harness


@pytest.mark.slow
def test_a_cpu_worker_leaves_gpu_jobs_queued_and_refuses_one_handed_to_it(
    gpu_harness: ArenaHarness, small_task_dir: Any, caplog: pytest.LogCaptureFixture
) -> None:
    harness = gpu_harness
    sid = harness.submit(TASK, random_csv(small_task_dir)).json()["submission_id"]
    worker = Worker(harness.settings, name="cpu-box:1")
    assert worker.device == "cpu"
    assert worker.run(idle_exit=True) == 0
    claim = queue.claim(
        harness.arena.sessions,
        submission_id=sid,
        worker=worker.name,
        lease_seconds=30,
        max_attempts=3,
    )
    assert claim is not None
    with caplog.at_level(logging.WARNING, logger="trustlab.worker"):
        worker.process(claim)
    assert "refuses submission" in caplog.text and "GPU-only" in caplog.text
    with harness.arena.sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None and row.status == "queued" and row.attempts == 0
        beat = session.get(WorkerBeat, "cpu-box:1")
        assert beat is not None and beat.device == "cpu"


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None]] = []

    def publish(self, submission_id: str, *, queue_name: str | None = None) -> bool:
        self.sent.append((submission_id, queue_name))
        return True


def test_redispatch_routes_gpu_jobs_to_the_gpu_queue(gpu_harness: ArenaHarness) -> None:
    from course_helpers import add_scored

    harness = gpu_harness
    sid = add_scored(harness, team="alpha", public=0, private=0, status="queued")
    recorder = _Recorder()
    sessions = harness.arena.sessions
    assert redispatch_once(harness.settings, sessions, recorder) == 1  # type: ignore[arg-type]
    assert recorder.sent == [(sid, harness.settings.gpu_queue)]


@pytest.mark.slow
def test_a_gpu_worker_scores_gpu_jobs(
    gpu_harness: ArenaHarness, small_task_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(devices, "has_gpu", lambda: True)
    harness = gpu_harness
    sid = harness.submit(TASK, random_csv(small_task_dir)).json()["submission_id"]
    settings = harness.settings.model_copy(update={"device": "cuda"})
    worker = Worker(settings, name="gpu-box:1")
    assert worker.device == "cuda" and worker.run(idle_exit=True) == 1
    info = harness.client.get(f"/api/v1/submissions/{sid}", headers=harness.headers()).json()
    assert info["status"] == "scored"

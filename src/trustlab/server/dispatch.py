"""Handing submissions to Celery workers, for arenas that outgrow one machine.

With ``TRUSTLAB_DISPATCH=celery`` the server publishes each accepted submission's id to a
broker (Redis or RabbitMQ, ``TRUSTLAB_BROKER_URL``) as a JSON message, and ``trustlab worker
--celery`` processes consume them one at a time with late acknowledgement. Jobs of GPU-only
tasks (``device: cuda``) go to ``TRUSTLAB_GPU_QUEUE`` (default ``trustlab-gpu``), which GPU
workers consume (start them with ``TRUSTLAB_DEVICE=cuda TRUSTLAB_CELERY_QUEUE=trustlab-gpu``).
A message only says
"a job is waiting": the worker claims the next job in the database exactly as the polling
workers do (round-robin across teams), so a duplicate or stale message scores nothing twice.
A redispatcher in ``trustlab serve`` republishes submissions a broker lost or whose worker
died.
"""

from __future__ import annotations

import logging
import threading
from functools import cache
from typing import Any

from sqlalchemy import select

from trustlab.server.models import Submission, Task
from trustlab.server.services import devices, queue
from trustlab.server.settings import Settings

log = logging.getLogger("trustlab.dispatch")

TASK_NAME = "trustlab.score"


def make_celery(settings: Settings) -> Any:
    """The Celery app: JSON only, late acknowledgement, one job per worker process at a time."""
    from celery import Celery

    app = Celery("trustlab", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"socket_connect_timeout": 2, "max_retries": 1},
    )

    @app.task(name=TASK_NAME)
    def score(submission_id: str) -> None:
        run_one(settings, submission_id)

    return app


@cache
def _worker(settings_json: str) -> Any:
    from trustlab.server.worker import Worker

    worker = Worker(Settings.model_validate_json(settings_json))
    worker.arena.start()
    return worker


def run_one(settings: Settings, submission_id: str) -> bool:
    """Claim and score one job for a message; False if nothing was runnable.

    The message is a hint that a job is waiting, not the job: the worker claims the next
    job in the queue's round-robin order across teams, so a team that floods the broker
    cannot push other teams' jobs back. Every accepted submission is published at least
    once (and republished when it waits too long), so there are never fewer messages than
    jobs; a message whose job another message already took claims the next one, or nothing.
    """
    worker = _worker(settings.model_dump_json())
    claim = queue.claim_next(
        worker.arena.sessions,
        worker=worker.name,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        **worker.claim_filters(),
    )
    if claim is None:
        log.debug("nothing runnable for the message about %s", submission_id)
        return False
    worker.process(claim)
    return True


class Publisher:
    """Publishes submission ids to the broker; a failure is logged, never raised, because the
    submission is already stored and the redispatcher will publish it later."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Any = None
        self._lock = threading.Lock()

    def _celery(self) -> Any:
        with self._lock:
            if self._app is None:
                self._app = make_celery(self.settings)
            return self._app

    def publish(self, submission_id: str, *, queue_name: str | None = None) -> bool:
        """Publish to ``queue_name`` (default ``celery_queue``; GPU-only tasks' jobs go to
        ``gpu_queue``, see :func:`trustlab.server.services.devices.queue_for`)."""
        try:
            self._celery().send_task(
                TASK_NAME,
                args=[submission_id],
                queue=queue_name or self.settings.celery_queue,
                retry=False,
            )
        except Exception as exc:  # the broker is down or unreachable
            log.warning("could not hand %s to the broker (%s); will retry", submission_id, exc)
            return False
        return True


def redispatch_once(settings: Settings, sessions: Any, publisher: Publisher) -> int:
    """Publish every submission due for (re)dispatch; returns how many were published."""
    ids = queue.due_for_dispatch(sessions, redispatch_seconds=settings.redispatch_seconds)
    if not ids:
        return 0
    with sessions() as session:
        routes = dict(
            session.execute(
                select(Submission.id, Task.spec)
                .join(Task, Task.id == Submission.task_id)
                .where(Submission.id.in_(ids))
            ).all()
        )
    return sum(
        publisher.publish(i, queue_name=devices.queue_for(settings, routes.get(i))) for i in ids
    )


class Redispatcher(threading.Thread):
    """Background thread of ``trustlab serve`` that republishes lost or orphaned jobs."""

    def __init__(self, settings: Settings, sessions: Any, publisher: Publisher) -> None:
        super().__init__(daemon=True, name="trustlab-redispatcher")
        self.settings, self.sessions, self.publisher = settings, sessions, publisher
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(1.0, self.settings.lease_seconds / 2)
        while not self.stopped.wait(interval):
            try:
                redispatch_once(self.settings, self.sessions, self.publisher)
            except Exception:
                log.exception("redispatch failed; retrying")

"""The running arena: settings, database, task catalogue. Built at start-up, never at import."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from trustlab.core import sandbox
from trustlab.server import storage
from trustlab.server.db import make_engine, make_sessionmaker, upgrade, write_session
from trustlab.server.dispatch import Publisher
from trustlab.server.errors import ApiError
from trustlab.server.intake import IntakeGate
from trustlab.server.models import Submission, Task
from trustlab.server.services import devices
from trustlab.server.services.queue import mark_dispatched
from trustlab.server.services.submissions import Context
from trustlab.server.services.tasks import ServedTask, TaskCatalog
from trustlab.server.settings import Settings
from trustlab.tasks import get_kind, list_kinds, load_plugins

log = logging.getLogger("trustlab.arena")

REFRESH_SECONDS = 5.0


class Arena:
    """Everything a request handler needs, created once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(
            settings.db_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
        )
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.catalog = TaskCatalog(settings.tasks_dir)
        self._last_refresh = 0.0
        self.publisher = Publisher(settings) if settings.dispatch == "celery" else None
        self.intake = IntakeGate.from_settings(settings)
        self._incoming: storage.IncomingFolder | None = None
        self._incoming_lock = threading.Lock()

    @property
    def incoming(self) -> Path:
        """This process's folder for uploads in progress (made, and locked, on first use)."""
        with self._incoming_lock:
            if self._incoming is None:
                self._incoming = storage.IncomingFolder(self.settings.submissions_dir)
            return self._incoming.path

    def dispatch(self, submission_id: str) -> None:
        """Tell the broker about an accepted submission (polling workers need no telling)."""
        if self.publisher is None:
            return
        with self.sessions() as session:
            row = session.get(Submission, submission_id)
            task = session.get(Task, row.task_id) if row is not None else None
            spec = dict(task.spec) if task is not None else None
        queue_name = devices.queue_for(self.settings, spec)
        if self.publisher.publish(submission_id, queue_name=queue_name):
            mark_dispatched(self.sessions, submission_id)

    @property
    def context(self) -> Context:
        return Context(settings=self.settings, sessions=self.sessions)

    def start(self) -> None:
        """Create folders, migrate the schema, drop half-received uploads, load the tasks."""
        load_plugins(self.settings.plugins)
        # Checks and scorings run in children of a fork server: have it import the task
        # kinds' modules once, not every child on its own.
        sandbox.preload(sorted({type(get_kind(name)).__module__ for name in list_kinds()}))
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings.submissions_dir.mkdir(parents=True, exist_ok=True)
        upgrade(self.engine)
        removed = storage.sweep_incoming(self.settings.submissions_dir)
        if removed:
            log.info("removed %d half-received upload(s) of stopped processes", removed)
        self.refresh_tasks()

    def warm_up(self) -> None:
        """Start the sandboxes' fork server in the background, so that the first file check
        does not wait for it to import the task kinds (seconds on a busy machine)."""
        sandbox.start_fork_server()

    def refresh_tasks(self) -> list[ServedTask]:
        with write_session(self.sessions) as session:
            tasks = self.catalog.refresh(session)
        self._last_refresh = time.monotonic()
        return tasks

    def _maybe_refresh(self, *, missing: bool = False) -> None:
        """Reload from disk (at most every 5 s) when a task is missing or a spec changed, so
        that staff can build a task or move a deadline without restarting the server."""
        if time.monotonic() - self._last_refresh < REFRESH_SECONDS:
            return
        if missing or self.catalog.changed_on_disk():
            self.refresh_tasks()
        else:
            self._last_refresh = time.monotonic()

    def tasks(self) -> list[ServedTask]:
        self._maybe_refresh()
        return self.catalog.all()

    def task(self, task_id: str) -> ServedTask:
        """A task by id, as its folder on disk describes it now."""
        self._maybe_refresh()
        try:
            return self.catalog.get(task_id)
        except ApiError:
            self._maybe_refresh(missing=True)
            return self.catalog.get(task_id)

    def close(self) -> None:
        with self._incoming_lock:
            if self._incoming is not None:
                self._incoming.close()
                self._incoming = None
        self.engine.dispose()

"""``trustlab serve``: the web server plus a supervised pool of worker processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import uvicorn

from trustlab.server.app import create_app
from trustlab.server.arena import Arena
from trustlab.server.settings import Settings

log = logging.getLogger("trustlab.server")


class WorkerPool:
    """Starts ``settings.workers`` worker processes and restarts any that dies."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TRUSTLAB_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env["TRUSTLAB_DATABASE_URL"] = self.settings.db_url
        env["TRUSTLAB_PLUGINS"] = ",".join(self.settings.plugins)
        env["TRUSTLAB_DISPATCH"] = self.settings.dispatch
        env["TRUSTLAB_BROKER_URL"] = self.settings.broker_url
        env["TRUSTLAB_CELERY_QUEUE"] = self.settings.celery_queue
        return env

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "trustlab", "worker"], env=self._env())

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.settings.workers)]
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._stop.is_set():
                    log.warning(
                        "worker %d exited with %s; starting another", proc.pid, proc.returncode
                    )
                    self.procs[i] = self._spawn()

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def serve(settings: Settings) -> None:
    """Migrate, start the workers and serve until interrupted."""
    Arena(settings).start()
    pool = WorkerPool(settings)
    pool.start()
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    finally:
        pool.stop()

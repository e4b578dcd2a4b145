"""``trustlab serve``: the web server plus a supervised pool of worker processes.

SIGTERM and SIGINT (Ctrl-C) both stop the whole tree: the web server stops accepting
connections and gives open requests ``shutdown_grace_seconds`` to finish, then the workers
are asked to stop (each gives its job back and its scoring child dies with it) and are
killed if they have not gone within ``shutdown_grace_seconds``. Workers also stop on their
own when the server process dies, even after ``kill -9`` (see
:meth:`trustlab.server.worker.Worker.watch_parent`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

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
        self._lock = threading.Lock()
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
        return subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "trustlab", "worker", "--parent-pid", str(os.getpid())],
            env=self._env(),
        )

    def start(self) -> None:
        with self._lock:
            self.procs = [self._spawn() for _ in range(self.settings.workers)]
        self._thread = threading.Thread(target=self._watch, daemon=True, name="trustlab-pool")
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                for i, proc in enumerate(self.procs):
                    if proc.poll() is not None and not self._stop.is_set():
                        log.warning(
                            "worker %d exited with %s; starting another", proc.pid, proc.returncode
                        )
                        self.procs[i] = self._spawn()

    def stop(self) -> None:
        """Ask every worker to stop (SIGTERM), then kill those still running after the grace
        period."""
        self._stop.set()
        with self._lock:
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.wait()


class ShutdownSignal(Exception):
    """SIGTERM arrived (after uvicorn's graceful shutdown, which re-raises it)."""


@contextmanager
def signals_stop_the_tree() -> Iterator[None]:
    """Turn SIGTERM into an exception, as SIGINT already is, for the duration.

    uvicorn handles both signals with a graceful shutdown and then raises the signal again
    with the previous handler in place: for SIGINT that is a ``KeyboardInterrupt``, but
    SIGTERM's default action would end the process on the spot and skip every ``finally``
    (the worker pool's shutdown among them).
    """

    def raise_shutdown(signum: int, frame: FrameType | None) -> None:
        raise ShutdownSignal(signum)

    previous = signal.signal(signal.SIGTERM, raise_shutdown)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(settings: Settings) -> None:
    """Migrate, start the workers and serve until SIGTERM or SIGINT, then stop them all."""
    arena = Arena(settings)
    arena.start()
    arena.close()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )
    server = uvicorn.Server(config)
    pool = WorkerPool(settings)
    with signals_stop_the_tree():
        try:
            pool.start()
            server.run()
        except (ShutdownSignal, KeyboardInterrupt):
            log.info("stopping the workers")
        finally:
            # A second signal must not cut the workers' shutdown short; it is bounded anyway.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            pool.stop()

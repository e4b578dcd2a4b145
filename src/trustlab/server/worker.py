"""Workers: processes that claim queued submissions and score them in limited children.

Run one with ``trustlab worker`` (on this machine or another that shares the database and the
data folder); ``trustlab serve`` starts ``TRUSTLAB_WORKERS`` of them beside the web server.
SIGTERM or Ctrl-C stops a worker at once: the job it held goes back to the queue untouched.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from types import FrameType

from trustlab.core.errors import SandboxError, TrustlabError
from trustlab.core.sandbox import Limits, run_limited
from trustlab.server.arena import Arena
from trustlab.server.services import queue
from trustlab.server.settings import Settings
from trustlab.tasks.build import score_submission

log = logging.getLogger("trustlab.worker")


class Stopping(Exception):
    """The worker was asked to stop while a job ran."""


class Worker:
    """Claims and scores submissions until stopped."""

    def __init__(self, settings: Settings, *, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.arena = Arena(settings)
        self.stop = threading.Event()

    def run(self, *, max_jobs: int | None = None, idle_exit: bool = False) -> int:
        """Process jobs; returns how many were processed.

        ``max_jobs`` stops after that many; ``idle_exit`` stops when the queue is empty.
        """
        self.arena.start()
        done = 0
        while not self.stop.is_set():
            if max_jobs is not None and done >= max_jobs:
                break
            try:
                claim = queue.claim_next(
                    self.arena.sessions,
                    worker=self.name,
                    lease_seconds=self.settings.lease_seconds,
                    max_attempts=self.settings.max_attempts,
                )
            except Exception:
                log.exception("cannot reach the database; retrying")
                self.stop.wait(max(1.0, self.settings.poll_interval))
                continue
            if claim is None:
                if idle_exit:
                    break
                self.stop.wait(self.settings.poll_interval)
                continue
            self.process(claim)
            done += 1
        self.arena.close()
        return done

    def process(self, claim: queue.Claim) -> None:
        settings = self.settings
        sessions = self.arena.sessions
        log.info(
            "scoring %s (task %s, attempt %d)", claim.submission_id, claim.task_id, claim.attempt
        )
        renew_every = settings.lease_seconds / 3
        last_renewal = time.monotonic()

        def heartbeat() -> None:
            nonlocal last_renewal
            if self.stop.is_set():
                raise Stopping
            if time.monotonic() - last_renewal >= renew_every:
                queue.renew(sessions, claim, lease_seconds=settings.lease_seconds)
                last_renewal = time.monotonic()

        limits = Limits(
            memory_mb=settings.job_memory_mb,
            cpu_seconds=settings.job_cpu_seconds,
            wall_seconds=settings.job_wall_seconds,
        )
        file = str((settings.submissions_dir / claim.file).resolve())
        try:
            result = run_limited(
                score_submission,
                args=(claim.task_path, file, claim.fields, list(settings.plugins)),
                limits=limits,
                on_wait=heartbeat,
                wait_interval=min(1.0, renew_every),
            )
        except Stopping:
            queue.release(sessions, claim)
            log.info("released %s on shutdown", claim.submission_id)
            return
        except queue.LostClaim:
            log.warning("lost the lease on %s; another worker has it", claim.submission_id)
            return
        except SandboxError as exc:
            queue.fail(sessions, claim, error=str(exc), retry=True)
            log.warning("scoring %s crashed: %s", claim.submission_id, exc)
            return
        except TrustlabError as exc:
            queue.fail(sessions, claim, error=str(exc), retry=False)
            log.info("submission %s failed: %s", claim.submission_id, exc)
            return
        if queue.complete(sessions, claim, result):
            log.info("scored %s: public %.4f", claim.submission_id, result["public_score"])
        else:
            log.warning("dropped a late result for %s", claim.submission_id)

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

"""Workers: processes that claim queued submissions and score them in limited children.

Run one with ``trustlab worker`` (on this machine or another that shares the database and the
data folder); ``trustlab serve`` starts ``TRUSTLAB_WORKERS`` of them beside the web server.
SIGTERM or Ctrl-C stops a worker at once: the job it held goes back to the queue untouched.
A worker's scoring child dies with it, even when the worker is killed with ``kill -9``.

How a job ends:

- scored: the result is recorded (if the worker still holds the job);
- the submission's own fault (a :class:`~trustlab.core.errors.TrustlabError` from the
  scorer, or the CPU-time limit used up, which no retry would change): failed at once, with
  the reason, and it counts as a failed submission for the team's cooldown;
- anything else (the child crashed, ran out of memory, or outlasted the wall-clock backstop
  on a busy machine): queued again, up to ``max_attempts`` attempts in all.
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
from trustlab.core.sandbox import (
    CpuLimitExceeded,
    Limits,
    WallClockExceeded,
    die_with_parent,
    run_limited,
)
from trustlab.server.arena import Arena
from trustlab.server.errors import scrub_paths
from trustlab.server.models import Task
from trustlab.server.services import devices, queue, workers
from trustlab.server.services.tasks import ScoringLimits, scoring_limits_from
from trustlab.server.settings import Settings
from trustlab.tasks import score_submission

log = logging.getLogger("trustlab.worker")

#: Seconds between two heartbeats of an idle worker.
BEAT_SECONDS = 5.0

MSG_SCORING_CPU = (
    "Scoring stopped after this task's CPU-time limit of {cpu} s{derivation}; the submission "
    "needs more computation than the task allows. It failed and will not be retried, and it "
    "counts as a failed submission for the cooldown. Submit a model that is cheaper to run."
)


class Stopping(Exception):
    """The worker was asked to stop while a job ran."""


def scoring_limits(claim: queue.Claim, settings: Settings) -> tuple[Limits, ScoringLimits | None]:
    """The limits of one scoring job: the task's own where it has them, else the settings'."""
    own = scoring_limits_from(claim.scoring_limits, task_id=claim.task_id)
    if own is None:
        limits = Limits(
            memory_mb=settings.job_memory_mb,
            cpu_seconds=settings.job_cpu_seconds,
            wall_seconds=settings.job_wall_seconds,
        )
        return limits, None
    wall = own.wall_seconds or max(settings.job_wall_seconds, 2.0 * own.cpu_seconds)
    memory = min(own.memory_mb or settings.job_memory_mb, settings.job_memory_mb)
    return Limits(memory_mb=memory, cpu_seconds=own.cpu_seconds, wall_seconds=wall), own


class Worker:
    """Claims and scores submissions until stopped."""

    def __init__(self, settings: Settings, *, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.arena = Arena(settings)
        self.stop = threading.Event()
        self._parent: int | None = None
        self.device = devices.resolve_device(settings.device)
        self._last_beat = 0.0

    def beat(self, current: str | None = None, *, force: bool = False) -> None:
        """Record a heartbeat for the staff page (at most every few seconds unless forced)."""
        if not force and time.monotonic() - self._last_beat < BEAT_SECONDS:
            return
        try:
            workers.beat(self.arena.sessions, name=self.name, device=self.device, current=current)
        except Exception:
            log.exception("cannot record this worker's heartbeat")
            return
        self._last_beat = time.monotonic()

    def claim_filters(self) -> dict[str, list[str]]:
        """Which tasks to skip (GPU-only ones, on a worker without a GPU) or to prefer."""
        with self.arena.sessions() as session:
            gpu = devices.gpu_only_tasks(session)
        if not gpu:
            return {}
        return {"prefer_tasks": gpu} if self.device == "cuda" else {"skip_tasks": gpu}

    def watch_parent(self, pid: int) -> None:
        """Stop (as on SIGTERM) when process ``pid``, the one that started this worker, dies.

        On Linux the kernel sends SIGTERM at once (``PR_SET_PDEATHSIG``); elsewhere the
        worker notices between jobs and while it waits for one.
        """
        self._parent = pid
        die_with_parent(signal.SIGTERM)
        if os.getppid() != pid:  # it died before the request above took effect
            self.stop.set()

    def _orphaned(self) -> bool:
        return self._parent is not None and os.getppid() != self._parent

    def run(self, *, max_jobs: int | None = None, idle_exit: bool = False) -> int:
        """Process jobs; returns how many were processed.

        ``max_jobs`` stops after that many; ``idle_exit`` stops when the queue is empty.
        """
        self.arena.start()
        self.arena.warm_up()
        log.info("worker %s scores on %s", self.name, self.device)
        self.beat(force=True)
        done = 0
        while not self.stop.is_set():
            if self._orphaned():
                break
            if max_jobs is not None and done >= max_jobs:
                break
            self.beat()
            try:
                claim = queue.claim_next(
                    self.arena.sessions,
                    worker=self.name,
                    lease_seconds=self.settings.lease_seconds,
                    max_attempts=self.settings.max_attempts,
                    **self.claim_filters(),
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
        sessions = self.arena.sessions
        spec = self._spec_of(claim.task_id)
        if devices.is_gpu_only(spec) and self.device != "cuda":
            log.warning(
                devices.MSG_REFUSED.format(
                    worker=self.name, submission=claim.submission_id, task=claim.task_id
                )
            )
            queue.release(sessions, claim)
            return
        device = devices.job_device(spec, self.device)
        self.beat(claim.submission_id, force=True)
        try:
            self._score(claim, device=device)
        finally:
            try:
                workers.beat(
                    sessions, name=self.name, device=self.device, current=None, finished=True
                )
                self._last_beat = time.monotonic()
            except Exception:
                log.exception("cannot record this worker's heartbeat")

    def _spec_of(self, task_id: str) -> dict[str, object] | None:
        with self.arena.sessions() as session:
            row = session.get(Task, task_id)
            return dict(row.spec) if row is not None else None

    def _score(self, claim: queue.Claim, *, device: str) -> None:
        settings = self.settings
        sessions = self.arena.sessions
        log.info(
            "scoring %s (task %s, attempt %d)", claim.submission_id, claim.task_id, claim.attempt
        )
        renew_every = settings.lease_seconds / 3
        last_renewal = time.monotonic()

        def heartbeat() -> None:
            nonlocal last_renewal
            if self.stop.is_set() or self._orphaned():
                raise Stopping
            if time.monotonic() - last_renewal >= renew_every:
                queue.renew(sessions, claim, lease_seconds=settings.lease_seconds)
                last_renewal = time.monotonic()
                self.beat(claim.submission_id)

        limits, own = scoring_limits(claim, settings)
        stored = (settings.submissions_dir / claim.file).resolve()
        known = {str(stored): "the submitted file"}
        try:
            result = run_limited(
                score_submission,
                args=(
                    claim.task_path,
                    str(stored),
                    claim.fields,
                    list(settings.plugins),
                    device,
                ),
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
        except CpuLimitExceeded:
            derivation = own.derivation() if own is not None else ""
            error = MSG_SCORING_CPU.format(cpu=limits.cpu_seconds, derivation=derivation)
            queue.fail(sessions, claim, error=error, retry=False)
            log.info("submission %s used up its CPU-time limit", claim.submission_id)
            return
        except WallClockExceeded as exc:
            queue.fail(sessions, claim, error=str(exc), retry=True)
            log.warning(
                "scoring %s outlasted the %g s wall-clock backstop after %s s of CPU time; "
                "the machine may be overloaded",
                claim.submission_id,
                limits.wall_seconds,
                "?" if exc.cpu_seconds is None else f"{exc.cpu_seconds:.1f}",
            )
            return
        except SandboxError as exc:
            queue.fail(sessions, claim, error=scrub_paths(str(exc), known=known), retry=True)
            log.warning("scoring %s crashed: %s", claim.submission_id, exc)
            return
        except TrustlabError as exc:
            queue.fail(sessions, claim, error=scrub_paths(str(exc), known=known), retry=False)
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

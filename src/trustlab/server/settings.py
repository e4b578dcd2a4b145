"""The arena's settings: one pydantic model, read from ``TRUSTLAB_*`` environment variables."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Share of the host's memory that the sandboxes' memory limits may add up to.
MEMORY_SHARE = 0.8


class Settings(BaseSettings):
    """Settings of the arena server and its workers.

    Every field can be set with an environment variable ``TRUSTLAB_<FIELD>``, e.g.
    ``TRUSTLAB_DATABASE_URL=postgresql+psycopg://user@host/db``. ``docs/arena.md`` describes
    the limits and how to size them.
    """

    model_config = SettingsConfigDict(env_prefix="TRUSTLAB_", extra="ignore")

    data_dir: Path = Field(default=Path("trustlab-data"))
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=0, le=64)
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval: float = Field(default=0.5, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    # Scoring, per job (a task's own ``scoring_limits`` take precedence where it has them).
    job_memory_mb: int = Field(default=4096, ge=256)
    job_cpu_seconds: int = Field(default=900, ge=1)
    job_wall_seconds: float = Field(default=1200.0, gt=0)
    # Intake: checking a file before the 202.
    intake_cpu_seconds: int = Field(default=60, ge=1)
    intake_wall_seconds: float = Field(default=300.0, gt=0)
    intake_memory_mb: int | None = Field(default=None, ge=256)
    intake_slots: int | None = Field(default=None, ge=1)
    intake_queue_seconds: float = Field(default=10.0, ge=0)
    # Uploads.
    upload_slots: int = Field(default=128, ge=1)
    team_upload_slots: int = Field(default=4, ge=1)
    upload_idle_seconds: float = Field(default=15.0, gt=0)
    upload_seconds: float = Field(default=60.0, gt=0)
    upload_min_bytes_per_second: int = Field(default=20_000, ge=1)
    # Answers under overload, the database pool and shutdown.
    retry_after_seconds: int = Field(default=10, ge=1)
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)
    plugins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    dispatch: Literal["database", "celery"] = "database"
    broker_url: str = "redis://127.0.0.1:6379/0"
    celery_queue: str = "trustlab"
    redispatch_seconds: float = Field(default=300.0, gt=0)
    # Scoring device: ``cpu``, ``cuda`` (refuse to start without a GPU) or ``auto`` (a GPU if
    # this machine has one). A task whose spec says ``device: cuda`` is scored only by GPU
    # workers; with Celery it is published to ``gpu_queue``.
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    gpu_queue: str = "trustlab-gpu"
    # Course operations: the staff page's key (no key: no staff page), the lifetime of a
    # team's login link and browser session, and the address login links start with.
    staff_key: SecretStr | None = None
    login_link_days: float = Field(default=14.0, gt=0)
    session_days: float = Field(default=7.0, gt=0)
    public_url: str = ""
    worker_stale_seconds: float = Field(default=120.0, gt=0)

    @field_validator("plugins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def tasks_dir(self) -> Path:
        return self.data_dir / "tasks"

    @property
    def submissions_dir(self) -> Path:
        return self.data_dir / "submissions"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'arena.db').resolve()}"

    @property
    def intake_memory(self) -> int:
        """The memory limit (MiB) of one intake check: ``intake_memory_mb``, else the jobs'."""
        return self.intake_memory_mb or self.job_memory_mb

    @property
    def intake_concurrency(self) -> int:
        """How many files are checked at once: ``intake_slots``, else derived from the host.

        At most one per CPU core, and no more than fit, at ``intake_memory`` each, in the
        share of the host's memory (:data:`MEMORY_SHARE`) that the scoring workers' limits
        (``workers x job_memory_mb``) leave; at least one.
        """
        if self.intake_slots is not None:
            return self.intake_slots
        budget = host_memory_mb() * MEMORY_SHARE - self.workers * self.job_memory_mb
        by_memory = math.floor(budget / self.intake_memory)
        return max(1, min(cpu_cores(), by_memory))


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_memory_mb() -> int:
    """The memory available to this process's control group, else the machine's, in MiB."""
    total = 0
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        total = 0
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and (total == 0 or int(text) < total):
            total = int(text)
        break
    return max(1, total // (1024 * 1024)) if total else 4096

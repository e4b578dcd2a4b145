"""The arena's settings: one pydantic model, read from ``TRUSTLAB_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the arena server and its workers.

    Every field can be set with an environment variable ``TRUSTLAB_<FIELD>``, e.g.
    ``TRUSTLAB_DATABASE_URL=postgresql+psycopg://user@host/db``.
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
    job_memory_mb: int = Field(default=4096, ge=256)
    job_cpu_seconds: int = Field(default=900, ge=1)
    job_wall_seconds: float = Field(default=1200.0, gt=0)
    intake_wall_seconds: float = Field(default=60.0, gt=0)
    plugins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    dispatch: Literal["database", "celery"] = "database"
    broker_url: str = "redis://127.0.0.1:6379/0"
    celery_queue: str = "trustlab"
    redispatch_seconds: float = Field(default=300.0, gt=0)

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

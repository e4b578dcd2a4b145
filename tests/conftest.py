"""Shared fixtures: a small built task, arena settings on SQLite and (where the environment
names one) PostgreSQL, an app client and team keys."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SUPPORT = Path(__file__).parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))

from cli_runner import main_runner  # noqa: E402 - needs the path above
from specs import SMALL_SPEC  # noqa: E402 - needs the path above

POSTGRES_URL = os.environ.get("TRUSTLAB_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def small_task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small membership-inference task, built once per test session."""
    from trustlab.tasks import build_task, parse_spec

    root = tmp_path_factory.mktemp("tasks")
    built = build_task(parse_spec(SMALL_SPEC), tasks_dir=root)
    return built.paths.root


@pytest.fixture(scope="session")
def slow_task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small task under the test plug-in kind whose scoring is slow and logged."""
    import slow_kind  # noqa: F401 - registers the kind

    from trustlab.tasks import build_task, parse_spec

    root = tmp_path_factory.mktemp("slow-tasks")
    data = dict(SMALL_SPEC, id="mia-slow", kind="slow-membership")
    data["params"] = dict(SMALL_SPEC["params"], delay=3.0)
    return build_task(parse_spec(data), tasks_dir=root).paths.root


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite always, PostgreSQL when the environment names one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'arena.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("TRUSTLAB_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"trustlab_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    (path / "tasks").mkdir(parents=True)
    return path


@pytest.fixture
def make_settings(data_dir: Path, database_url: str) -> Callable[..., Any]:
    from trustlab.server.settings import Settings

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": database_url,
            "lease_seconds": 30.0,
            "poll_interval": 0.05,
            "job_memory_mb": 4096,
            "plugins": ["slow_kind"],
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def trustlab_main(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Call :func:`trustlab.cli.main` in-process as ``trustlab ARGS...``."""
    return main_runner(capsys, monkeypatch)

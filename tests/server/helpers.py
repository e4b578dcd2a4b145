"""Helpers for the arena's tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from trustlab.server import storage
from trustlab.server.app import create_app
from trustlab.server.db import write_session
from trustlab.server.models import Submission
from trustlab.server.services import teams
from trustlab.server.settings import Settings
from trustlab.server.worker import Worker
from trustlab.tasks.base import TaskPaths, write_scoring_limits


def install_task(
    source: Path,
    data_dir: Path,
    *,
    params_update: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    """Copy a built task into ``data_dir/tasks``, changing spec fields (rules only) and, with
    ``params_update``, some of its params."""
    spec = yaml.safe_load((source / "spec.yaml").read_text())
    spec.update(overrides)
    if params_update:
        spec["params"].update(params_update)
    target = data_dir / "tasks" / spec["id"]
    shutil.copytree(source, target)
    (target / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=True))
    return target


STRESS_TASK = "mia-stress"


def install_stress_task(
    source: Path,
    data_dir: Path,
    *,
    scoring_limits: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    """Install the small membership task again as the misbehaving ``stress-membership`` kind
    (``tests/support/stress_kind.py``), optionally with its own ``scoring_limits``."""
    target = install_task(source, data_dir, id=STRESS_TASK, kind="stress-membership", **overrides)
    if scoring_limits is not None:
        write_scoring_limits(TaskPaths(target), scoring_limits)
    return target


def detail(response: Any) -> str:
    """The message of an error response, whose JSON body must be ``{"detail": ...}`` alone."""
    body = response.json()
    assert set(body) == {"detail"}, body
    return str(body["detail"])


def candidate_ids(task_dir: Path) -> np.ndarray:
    with np.load(task_dir / "public" / "candidates.npz") as data:
        return data["ids"]


def members(task_dir: Path) -> dict[int, int]:
    with np.load(task_dir / "hidden" / "answers.npz") as data:
        return dict(zip(data["ids"].tolist(), data["member"].tolist(), strict=True))


def csv_text(ids: Any, scores: Any) -> str:
    lines = ["id,score"] + [f"{int(i)},{float(s)!r}" for i, s in zip(ids, scores, strict=True)]
    return "\n".join(lines) + "\n"


def random_csv(task_dir: Path, seed: int = 0) -> str:
    ids = candidate_ids(task_dir)
    return csv_text(ids, np.random.default_rng(seed).random(len(ids)))


def oracle_csv(task_dir: Path) -> str:
    """Scores that know the answers: a perfect attack."""
    truth = members(task_dir)
    ids = candidate_ids(task_dir)
    return csv_text(ids, [truth[int(i)] for i in ids])


@dataclass
class ArenaHarness:
    settings: Settings
    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def arena(self) -> Any:
        return self.client.app.state.arena  # type: ignore[attr-defined]

    def headers(self, team: str = "alpha") -> dict[str, str]:
        return {"X-API-Key": self.keys[team]}

    def submit(
        self,
        task_id: str,
        content: str | bytes,
        *,
        team: str = "alpha",
        filename: str = "scores.csv",
        data: dict[str, str] | None = None,
    ) -> Any:
        body = content.encode() if isinstance(content, str) else content
        return self.client.post(
            f"/submit/{task_id}",
            headers=self.headers(team),
            files={"file": (filename, body, "text/csv")},
            data=data or {},
        )

    def score_all(self) -> int:
        return Worker(self.settings).run(idle_exit=True)

    def count_rows(self) -> int:
        with self.arena.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Submission)) or 0)

    def stored_files(self) -> list[Path]:
        """Every file under the submissions folder but the server processes' lock files."""
        root = self.settings.submissions_dir
        if not root.exists():
            return []
        return [p for p in root.rglob("*") if p.is_file() and not _is_lock(p)]

    def add_team(self, name: str) -> str:
        with write_session(self.arena.sessions) as session:
            _, key = teams.create_team(session, name=name)
        self.keys[name] = key
        return key


def _is_lock(path: Path) -> bool:
    return path.parent.name == storage.INCOMING and path.name.endswith(storage.LOCK_SUFFIX)


def start_harness(
    settings: Settings, teams_: tuple[str, ...] = ("alpha", "beta")
) -> Callable[[], ArenaHarness]:
    def make() -> ArenaHarness:
        client = TestClient(create_app(settings))
        client.__enter__()
        harness = ArenaHarness(settings=settings, client=client)
        for name in teams_:
            harness.add_team(name)
        return harness

    return make


class ProcessGroup:
    """A ``python -m trustlab ...`` process in its own process group, logged to a file."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trustlab", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the process and its children: a crash, not a shutdown."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class ThreadedServer:
    """The arena app served by uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, settings: Settings, *, keep_alive: float = 2.0) -> None:
        self.settings = settings
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", timeout_keep_alive=keep_alive
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.keys: dict[str, str] = {}

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    @property
    def arena(self) -> Any:
        return self.app.state.arena

    def add_team(self, name: str) -> str:
        with write_session(self.arena.sessions) as session:
            _, key = teams.create_team(session, name=name)
        self.keys[name] = key
        return key


def _session_stats(sid: int) -> dict[int, list[str]]:
    """``/proc/<pid>/stat`` fields (after the name) of the live processes of session ``sid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found[int(entry.name)] = fields
    return found


def session_processes(sid: int) -> list[int]:
    """The live (not zombie) processes of session ``sid``, found by walking ``/proc``."""
    return sorted(_session_stats(sid))


def sandbox_children(sid: int) -> list[int]:
    """The sandboxes running in session ``sid``: each leads a process group of its own."""
    return sorted(
        pid for pid, fields in _session_stats(sid).items() if int(fields[2]) == pid != sid
    )


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)

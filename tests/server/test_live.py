"""The arena as a real server process on loopback: concurrency and a restart mid-scoring."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers import (
    STRESS_TASK,
    ProcessGroup,
    install_stress_task,
    install_task,
    oracle_csv,
    random_csv,
    sandbox_children,
    session_processes,
    start_harness,
    wait_until,
)
from sqlalchemy import select
from stress_kind import directive

from trustlab.client import ArenaClient, ArenaError
from trustlab.schemas import SubmissionStatus
from trustlab.server.db import make_engine, make_sessionmaker, upgrade, write_session
from trustlab.server.models import Submission
from trustlab.server.services import teams

pytestmark = pytest.mark.slow
SUPPORT = Path(__file__).parents[1] / "support"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer(ProcessGroup):
    def __init__(self, data_dir: Path, database_url: str, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "TRUSTLAB_DATA_DIR": str(data_dir),
            "TRUSTLAB_DATABASE_URL": database_url,
            "TRUSTLAB_PORT": str(self.port),
            "TRUSTLAB_WORKERS": "1",
            "TRUSTLAB_POLL_INTERVAL": "0.1",
            "TRUSTLAB_PLUGINS": "slow_kind",
            "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")]),
            **env,
        }
        super().__init__(["serve"], env=full_env, log=data_dir.parent / "server.log")

    def start(self) -> None:
        super().start()
        assert self.proc is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
            assert self.proc.poll() is None, self.log.read_text()
        raise AssertionError("server did not start:\n" + self.log.read_text())


@pytest.fixture
def live(
    data_dir: Path, database_url: str, small_task_dir: Path, slow_task_dir: Path, tmp_path: Path
) -> Iterator[Any]:
    created: list[LiveServer] = []

    def make(*, env: dict[str, str] | None = None, **rules: Any) -> tuple[LiveServer, str]:
        install_task(small_task_dir, data_dir, **rules)
        install_task(slow_task_dir, data_dir)
        engine = make_engine(database_url)
        upgrade(engine)
        with write_session(make_sessionmaker(engine)) as session:
            _, key = teams.create_team(session, name=f"team{len(created)}")
        engine.dispose()
        server = LiveServer(data_dir, database_url, env or {})
        server.start()
        created.append(server)
        return server, key

    yield make
    for server in created:
        server.stop()


def test_submit_and_score_through_a_real_server(
    live: Any, small_task_dir: Path, tmp_path: Path
) -> None:
    server, key = live()
    csv = tmp_path / "scores.csv"
    csv.write_text(oracle_csv(small_task_dir))
    with ArenaClient(server.url, api_key=key) as client:
        assert [t.task_id for t in client.tasks()] == ["mia-slow", "mia-small"]
        files = client.download_all("mia-small", tmp_path / "artefacts")
        assert {p.name for p in files} >= {"target.safetensors", "candidates.npz"}
        receipt = client.submit("mia-small", csv)
        info = client.wait(receipt.submission_id, timeout=60)
        assert info.status is SubmissionStatus.SCORED
        assert info.public_score == 1.0
        board = client.leaderboard("mia-small")
        assert board.entries[0].public_score == 1.0
        with pytest.raises(ArenaError) as err:
            client.submit("mia-small", tmp_path / "artefacts" / "candidates.npz")
        assert err.value.status_code == 400


def test_concurrent_submissions_cannot_beat_the_cooldown(
    live: Any, small_task_dir: Path, tmp_path: Path
) -> None:
    server, key = live(cooldown={"accepted": 600, "failed": 600})
    body = random_csv(small_task_dir).encode()

    def post(_: int) -> int:
        response = httpx.post(
            f"{server.url}/submit/mia-small",
            headers={"X-API-Key": key},
            files={"file": ("s.csv", body)},
            timeout=60,
        )
        if response.status_code not in (202, 429, 503):
            print(response.text)
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(post, range(16)))
    # One is accepted; the rest meet the cooldown, or, on a loaded machine, the bounded intake's
    # honest 503 (Retry-After) before it. No second 202, and never a 5xx other than that.
    assert codes.count(202) == 1, codes
    assert set(codes) <= {202, 429, 503}, codes
    assert codes.count(429) >= 1, codes


def test_restart_in_the_middle_of_scoring_loses_nothing_and_scores_once(
    live: Any, small_task_dir: Path, database_url: str, tmp_path: Path
) -> None:
    score_log = tmp_path / "scored.log"
    env = {"TRUSTLAB_LEASE_SECONDS": "3", "TRUSTLAB_TEST_SCORE_LOG": str(score_log)}
    server, key = live(env=env)
    csv = tmp_path / "scores.csv"
    csv.write_text(oracle_csv(small_task_dir))
    with ArenaClient(server.url, api_key=key) as client:
        sub = client.submit("mia-slow", csv).submission_id
        deadline = time.monotonic() + 30
        while client.submission(sub).status is not SubmissionStatus.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    server.kill()
    assert not score_log.exists()  # the slow scorer was killed before it finished

    server.start()
    with ArenaClient(server.url, api_key=key) as client:
        info = client.wait(sub, timeout=90)
    assert info.status is SubmissionStatus.SCORED
    assert info.public_score == 1.0
    assert score_log.read_text().split() == [sub]
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        row = session.scalar(select(Submission).where(Submission.id == sub))
        assert row is not None and row.attempts == 2
    engine.dispose()


def test_every_error_code_over_a_real_server(
    live: Any, small_task_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    past = "2020-01-01T00:00:00+00:00"
    install_task(small_task_dir, data_dir, id="mia-closed", deadline=past)
    server, key = live(cooldown={"accepted": 600, "failed": 600})
    url, auth = server.url, {"X-API-Key": key}
    good = random_csv(small_task_dir).encode()

    def post(task: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(
            f"{url}/submit/{task}",
            headers=auth if headers is None else headers,
            files={"file": ("s.csv", body)},
            timeout=60,
        )

    def detail(response: httpx.Response) -> str:
        body = response.json()
        assert set(body) == {"detail"} and isinstance(body["detail"], str), body
        return str(body["detail"])

    assert "X-API-Key" in detail(r := post("mia-small", good, headers={}))
    assert r.status_code == 401
    assert post("mia-small", good, headers={"X-API-Key": key + "x"}).status_code == 401
    assert (r := post("no-such-task", good)).status_code == 404 and "tasks" in detail(r)
    assert (r := post("mia-closed", good)).status_code == 403 and "deadline" in detail(r)
    assert (r := post("mia-small", good + b"\n" * 300_000)).status_code == 413
    assert "limit" in detail(r)
    no_file = httpx.post(f"{url}/submit/mia-small", headers=auth, data={"x": "1"}, timeout=60)
    assert no_file.status_code == 422 and "'file'" in detail(no_file)
    bad = good.replace(b"\n1,", b"\n1,nan,", 1)
    assert (r := post("mia-small", bad)).status_code == 400 and "Line" in detail(r)
    assert (r := post("mia-small", b"")).status_code == 400 and "empty" in detail(r)

    accepted = post("mia-small", good)
    assert accepted.status_code == 202, accepted.text
    assert (r := post("mia-small", good)).status_code == 429
    assert 590 <= int(r.headers["Retry-After"]) <= 600 and "Cooldown" in detail(r)

    sub = accepted.json()["submission_id"]
    assert httpx.get(f"{url}/api/v1/submissions/{sub}", headers=auth).status_code == 200
    assert httpx.get(f"{url}/api/v1/submissions/{sub}").status_code == 401
    assert httpx.get(f"{url}/api/v1/submissions/nope", headers=auth).status_code == 404
    closed = httpx.get(f"{url}/api/v1/tasks/mia-closed/leaderboard").json()
    assert closed["final"] is True and closed["entries"] == []
    page = httpx.get(f"{url}/leaderboard_page")
    assert page.status_code == 200 and "mia-closed" in page.text

    # Staff move the deadline: the running server follows without a restart.
    spec_path = data_dir / "tasks" / "mia-closed" / "spec.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["deadline"] = None
    spec_path.write_text(yaml.safe_dump(spec))
    deadline = time.monotonic() + 15
    while (r := post("mia-closed", good)).status_code == 403:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert r.status_code == 202, r.text


def _wait_for_status(url: str, key: str, sub: str, status: str, timeout: float = 60) -> None:
    def reached() -> bool:
        info = httpx.get(f"{url}/api/v1/submissions/{sub}", headers={"X-API-Key": key}).json()
        return bool(info["status"] == status)

    wait_until(reached, timeout=timeout, what=f"submission {sub} to be {status}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_serve_its_workers_and_their_children(
    live: Any, small_task_dir: Path, data_dir: Path, database_url: str, signum: int
) -> None:
    install_stress_task(small_task_dir, data_dir)
    env = {"TRUSTLAB_WORKERS": "2", "TRUSTLAB_PLUGINS": "slow_kind,stress_kind"}
    server, key = live(env=env)
    response = httpx.post(
        f"{server.url}/submit/{STRESS_TASK}",
        headers={"X-API-Key": key},
        files={"file": ("s.csv", directive("spin-score"))},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    sub = response.json()["submission_id"]
    _wait_for_status(server.url, key, sub, "running")
    assert server.proc is not None
    sid = server.proc.pid  # the server leads a session of its own
    wait_until(lambda: len(sandbox_children(sid)) == 1, timeout=60, what="the scoring child")
    os.kill(server.proc.pid, signum)  # the server alone, as systemd or Ctrl-C would
    server.proc.wait(timeout=60)
    wait_until(lambda: session_processes(sid) == [], timeout=30, what="the whole tree to stop")
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        row = session.scalar(select(Submission).where(Submission.id == sub))
        assert row is not None and (row.status, row.attempts) == ("queued", 0)  # given back
    engine.dispose()


def test_a_killed_worker_takes_its_scoring_child_with_it(
    make_settings: Any, small_task_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    install_stress_task(small_task_dir, data_dir)
    settings = make_settings(plugins=["slow_kind", "stress_kind"])
    harness = start_harness(settings)()
    worker = ProcessGroup(
        ["worker"],
        env={
            **os.environ,
            "TRUSTLAB_DATA_DIR": str(settings.data_dir),
            "TRUSTLAB_DATABASE_URL": settings.db_url,
            "TRUSTLAB_PLUGINS": "slow_kind,stress_kind",
            "TRUSTLAB_POLL_INTERVAL": "0.1",
            "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")]),
        },
        log=tmp_path / "worker.log",
    )
    try:
        sub = harness.submit(STRESS_TASK, directive("spin-score")).json()["submission_id"]
        worker.start()
        assert worker.proc is not None
        sid = worker.proc.pid

        def running() -> bool:
            info = harness.client.get(f"/api/v1/submissions/{sub}", headers=harness.headers())
            return bool(info.json()["status"] == "running")

        wait_until(running, timeout=60, what="the job to start")
        wait_until(lambda: len(sandbox_children(sid)) == 1, timeout=60, what="the child")
        os.kill(worker.proc.pid, signal.SIGKILL)  # the worker alone
        worker.proc.wait(timeout=10)
        wait_until(lambda: session_processes(sid) == [], timeout=15, what="the child to die")
    finally:
        worker.stop()
        harness.client.__exit__(None, None, None)

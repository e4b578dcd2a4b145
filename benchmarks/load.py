"""Load test of the arena: a deadline rush, stalled uploads, a hanging model, crashes.

Builds a small membership-inference task (and, unless ``--queries 0``, a small model-extraction
task for ``/query``) in a temporary folder, starts ``trustlab serve`` on a loopback port, and
then, in phases:

1. **rush**: ``--teams`` x ``--per-team`` valid submissions sent at the same moment, while
   ``--stalled`` uploads (each from a team of its own) send their headers and a few bytes and
   then nothing, ``--queries`` clients query the victim in a loop, and a probe team submits
   now and then; with ``--chaos K`` the server and its workers are killed with ``kill -9``
   K times, ``--chaos-interval`` s apart, during the rush and the scoring after it, and
   started again (clients then retry a request that got no answer);
2. **hang**: one team submits ``workers + 1`` models that compute until the task's CPU-time
   limit (derived, as a task build would, from the reference submission's scoring time x 5),
   then another team submits a valid one: how long it waits shows the queue's fairness;
3. **drain**: waits until every accepted submission is scored or failed, stops the server
   with SIGTERM and counts the processes left behind.

It prints accepted / refused (by status) / 5xx / connection errors / scored once / lost, and
the p50 and p99 latency of ``/submit`` and ``/query``. Everything stays on 127.0.0.1 and every
loop is bounded in count and time.

    .venv/bin/python benchmarks/load.py                       # 50 teams x 4, SQLite
    .venv/bin/python benchmarks/load.py --database-url postgresql+psycopg://user@127.0.0.1/db
    .venv/bin/python benchmarks/load.py --chaos 3 --stalled 0 --queries 0

The PostgreSQL database should be empty (a scratch one): the run adds its teams and tasks.
This module is also the server's plug-in (``TRUSTLAB_PLUGINS=load``): importing it registers
the ``load-membership`` kind, membership inference whose scorer logs each finished scoring and
computes forever on a file that starts with ``#hang``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustlab.tasks import register_kind
from trustlab.tasks.base import ScoreResult, TaskPaths, write_scoring_limits
from trustlab.tasks.membership import MembershipInference
from trustlab.tasks.registry import TASK_KINDS
from trustlab.tasks.spec import TaskSpec

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
MIA = "load-mia"
STEAL = "load-steal"
HANG = b"#hang\n"
SCORE_LOG = "LOAD_SCORE_LOG"
FACTOR = 5.0


class LoadMembership(MembershipInference):
    """Membership inference that logs every finished scoring and hangs on ``#hang`` files."""

    name = "load-membership"

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        if file.read_bytes()[: len(HANG)] == HANG:
            return {"rows": 0}  # passes its check, as a model that hangs only at scoring
        return super().validate(spec, paths=paths, file=file, fields=fields)

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        if file.read_bytes()[: len(HANG)] == HANG:
            while True:  # until the CPU-time limit stops it
                pass
        result = super().score(spec, paths=paths, file=file, fields=fields)
        log = os.environ.get(SCORE_LOG)
        if log:
            with open(log, "a") as handle:
                handle.write(f"{file.parent.name}\n")
        return result


if LoadMembership.name not in TASK_KINDS:
    register_kind(LoadMembership)


# --------------------------------------------------------------------------------------------
# Building the tasks and the teams


def _rules() -> dict[str, Any]:
    return {
        "public_fraction": 0.3,
        "cooldown": {"accepted": 0, "failed": 0},
        "limits": {"daily": None, "total": None},
        "dataset": "digits",
        "seed": 0,
        "deadline": None,
    }


def build_tasks(tasks_dir: Path, *, with_queries: bool) -> dict[str, Any]:
    """Build the tasks; returns the membership task's reference scoring time and limits."""
    import numpy as np

    from trustlab.tasks import build_task, parse_spec

    mia = {
        "id": MIA,
        "kind": LoadMembership.name,
        "title": "Load test: membership inference",
        "max_file_size": "200KB",
        "params": {
            "architecture": "digits-cnn",
            "n_candidates": 200,
            "n_calibration": 40,
            "epochs": 3,
            "bootstrap_resamples": 50,
        },
        **_rules(),
    }
    built = build_task(parse_spec(mia), tasks_dir=tasks_dir)
    # Derive the scoring limit as a task build would: the reference submission's CPU time.
    sample = built.paths.public / "sample_submission.csv"
    start = time.process_time()
    built.kind.score(built.spec, paths=built.paths, file=sample, fields={})
    reference = time.process_time() - start
    limits = {
        "cpu_seconds": max(1, math.ceil(FACTOR * reference)),
        "reference_cpu_seconds": round(reference, 3),
        "factor": FACTOR,
    }
    write_scoring_limits(built.paths, limits)  # tighter than the build's floor of 30 s
    with np.load(built.paths.public / "candidates.npz") as data:
        ids = data["ids"].tolist()
    if with_queries:
        steal = {
            "id": STEAL,
            "kind": "model-extraction",
            "title": "Load test: model extraction",
            "max_file_size": "2MB",
            "params": {
                "n_train": 300,
                "n_eval": 100,
                "n_pool": 200,
                "epochs": 2,
                "query_budget": 10**9,
                "max_batch": 64,
                "input_range": [0.0, 1.0],
                "architectures": [{"name": "digits-cnn"}],
                "bootstrap_resamples": 20,
            },
            **_rules(),
        }
        build_task(parse_spec(steal), tasks_dir=tasks_dir)
    return {"reference": reference, "limits": limits, "ids": ids}


def csv_body(ids: list[int], seed: int) -> bytes:
    import numpy as np

    scores = np.random.default_rng(seed).random(len(ids))
    lines = ["id,score"] + [f"{i},{s!r}" for i, s in zip(ids, scores.tolist(), strict=True)]
    return ("\n".join(lines) + "\n").encode()


def make_teams(database_url: str, names: list[str]) -> dict[str, str]:
    from trustlab.server.db import make_engine, make_sessionmaker, upgrade, write_session
    from trustlab.server.services import teams

    engine = make_engine(database_url)
    upgrade(engine)
    keys = {}
    with write_session(make_sessionmaker(engine)) as session:
        for name in names:
            _, keys[name] = teams.create_team(session, name=name)
    engine.dispose()
    return keys


def read_rows(database_url: str, ids: list[str]) -> dict[str, Any]:
    from sqlalchemy import select

    from trustlab.server.db import make_engine, make_sessionmaker
    from trustlab.server.models import Submission

    engine = make_engine(database_url)
    rows = {}
    with make_sessionmaker(engine)() as session:
        for chunk in range(0, len(ids), 500):
            wanted = ids[chunk : chunk + 500]
            for row in session.scalars(select(Submission).where(Submission.id.in_(wanted))):
                rows[row.id] = row
    engine.dispose()
    return rows


# --------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def session_processes(sid: int) -> list[int]:
    """Live processes of session ``sid`` (a ``/proc`` walk; zombies do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def wait_for_no_processes(sid: int, *, timeout: float) -> int:
    """Wait up to ``timeout`` s for session ``sid`` to empty; how many processes remain."""
    deadline = time.monotonic() + timeout
    while (left := len(session_processes(sid))) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@dataclass
class Server:
    """``trustlab serve`` in a session of its own."""

    env: dict[str, str]
    log: Path
    url: str
    proc: subprocess.Popen[bytes] | None = None
    sessions: list[int] = field(default_factory=list)

    def start(self) -> None:
        import httpx

        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trustlab", "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.sessions.append(self.proc.pid)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited; see " + str(self.log))
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start; see " + str(self.log))

    def crash(self) -> int:
        """``kill -9`` the server and its workers (the process group); orphans left after 5 s."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        return wait_for_no_processes(self.proc.pid, timeout=5)

    def stop(self) -> int:
        """SIGTERM to the server alone; the processes of its session left after 30 s."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        left = wait_for_no_processes(self.proc.pid, timeout=30)
        if left:  # leave nothing running behind the benchmark
            for pid in session_processes(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return left


# --------------------------------------------------------------------------------------------
# Clients


@dataclass
class Outcome:
    status: int | None  # None: no HTTP answer (connection refused, reset, timed out)
    seconds: float
    error: str = ""
    submission_id: str | None = None
    retry_after: str | None = None
    tries: int = 1


class Chaos(threading.Thread):
    """``kill -9`` the server and its workers ``rounds`` times, ``interval`` s apart, starting
    them again each time; ``orphans`` counts the processes each kill left behind."""

    def __init__(self, server: Server, *, rounds: int, interval: float) -> None:
        super().__init__(name="chaos")
        self.server, self.rounds, self.interval = server, rounds, interval
        self.orphans: list[int] = []

    def run(self) -> None:
        for _ in range(self.rounds):
            time.sleep(self.interval)
            self.orphans.append(self.server.crash())
            self.server.start()


def reason(status: int, detail: str) -> str:
    """A refusal's kind: its status and the message's cause, numbers left out."""
    cause = detail.split("(", 1)[1].split(")", 1)[0] if status == 503 and "(" in detail else ""
    cause = re.sub(r"[0-9.]+", "N", cause or detail.split(".")[0])
    return f"{status} {cause[:70]}"


def submit(
    url: str,
    key: str,
    task: str,
    body: bytes,
    *,
    timeout: float = 120,
    retries: int = 0,
    polite: int = 0,
) -> Outcome:
    """POST the file. With ``retries``, try again a second later when no answer came (the
    server was down); with ``polite``, try again that many times after a 503's or 429's
    ``Retry-After``, as a well-behaved client would. The latency is that of the last try."""
    import httpx

    tries = 0
    while True:
        tries += 1
        start = time.monotonic()
        try:
            response = httpx.post(
                f"{url}/submit/{task}",
                headers={"X-API-Key": key},
                files={"file": ("scores.csv", body, "text/csv")},
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            if retries > 0:
                retries -= 1
                time.sleep(1.0)
                continue
            return Outcome(None, time.monotonic() - start, type(exc).__name__, tries=tries)
        seconds = time.monotonic() - start
        status = response.status_code
        retry_after = response.headers.get("retry-after")
        if status in (429, 503) and retry_after and polite > 0:
            polite -= 1
            time.sleep(float(retry_after))
            continue
        if status == 202:
            return Outcome(
                202, seconds, submission_id=response.json()["submission_id"], tries=tries
            )
        return Outcome(
            status,
            seconds,
            error=reason(status, response.json().get("detail", "")),
            retry_after=retry_after,
            tries=tries,
        )


def query_loop(url: str, key: str, stop: threading.Event, out: list[Outcome]) -> None:
    """POST /query with a 16-row batch until ``stop`` (bounded by the caller's deadline)."""
    import httpx
    import numpy as np

    with httpx.Client(timeout=60) as client:
        info = client.get(f"{url}/api/v1/tasks/{STEAL}/query", headers={"X-API-Key": key})
        shape = info.json()["input_shape"]
        body = {"inputs": np.full((16, *shape), 0.5).tolist()}
        while not stop.is_set():
            start = time.monotonic()
            try:
                response = client.post(
                    f"{url}/api/v1/tasks/{STEAL}/query", headers={"X-API-Key": key}, json=body
                )
                out.append(Outcome(response.status_code, time.monotonic() - start))
            except httpx.TransportError as exc:
                out.append(Outcome(None, time.monotonic() - start, error=type(exc).__name__))
                stop.wait(0.5)


def stall_loop(port: int, key: str, stop: threading.Event, answers: Counter[str]) -> None:
    """Keep one stalled upload open (headers, a few bytes, then nothing) until ``stop``:
    when the server answers and closes it, open another."""
    head = (
        f"POST /submit/{MIA} HTTP/1.1\r\nHost: {HOST}\r\nX-API-Key: {key}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 150000\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\nid,sc'
    ).encode()
    while not stop.is_set():
        try:
            sock = socket.create_connection((HOST, port), timeout=5)
        except OSError:
            answers["could not connect"] += 1
            stop.wait(1.0)
            continue
        answers["opened"] += 1
        try:
            sock.sendall(head)
            sock.settimeout(1.0)
            data = b""
            while not stop.is_set():
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 "):
                answers[data.split(b" ", 2)[1].decode()] += 1
            elif not stop.is_set():
                answers["closed without an answer"] += 1
        except OSError as exc:
            answers[type(exc).__name__] += 1
        finally:
            sock.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --------------------------------------------------------------------------------------------
# The run


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="trustlab-load-"))
    data_dir = root / "data"
    database_url = args.database_url or f"sqlite:///{data_dir / 'arena.db'}"
    tag = os.urandom(3).hex()
    report: dict[str, Any] = {"database": database_url.split(":", 1)[0]}
    try:
        print(f"building the tasks in {root} ...", flush=True)
        facts = build_tasks(data_dir / "tasks", with_queries=args.queries > 0)
        report["limits"] = facts["limits"]
        ids = facts["ids"]
        rush_teams = [f"rush-{tag}-{i}" for i in range(args.teams)]
        stall_teams = [f"stall-{tag}-{i}" for i in range(args.stalled)]
        query_teams = [f"query-{tag}-{i}" for i in range(args.queries)]
        other = [f"warm-up-{tag}"] + [f"probe-{tag}-{i}" for i in range(args.probes)]
        other += [f"hang-{tag}", f"bystander-{tag}"]  # the hang phase's two teams
        keys = make_teams(database_url, rush_teams + stall_teams + query_teams + other)
        port = free_port()
        score_log = root / "scored.log"
        env = {
            **os.environ,
            "TRUSTLAB_DATA_DIR": str(data_dir),
            "TRUSTLAB_DATABASE_URL": database_url,
            "TRUSTLAB_HOST": HOST,
            "TRUSTLAB_PORT": str(port),
            "TRUSTLAB_WORKERS": str(args.workers),
            "TRUSTLAB_PLUGINS": "load",
            "TRUSTLAB_LEASE_SECONDS": str(args.lease),
            "TRUSTLAB_POLL_INTERVAL": "0.2",
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            SCORE_LOG: str(score_log),
        }
        server = Server(env=env, log=root / "server.log", url=f"http://{HOST}:{port}")
        server.start()
        url = server.url
        # One submission first: the server's first file check waits for its fork server to
        # finish importing the task kinds (it starts at start-up, in the background).
        submit(url, keys[other[0]], MIA, csv_body(ids, 12345))
        print("rush ...", flush=True)
        teams = {"rush": rush_teams, "stall": stall_teams, "query": query_teams}
        teams["probe"] = [f"probe-{tag}-{i}" for i in range(args.probes)]
        report.update(rush(args, server, port, keys, ids, teams))
        print("hanging model ...", flush=True)
        report.update(hang_phase(args, url, keys, ids, tag))
        print("draining ...", flush=True)
        accepted = report["accepted_ids"] + report["hang_ids"]
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            rows = read_rows(database_url, accepted)
            if all(r.status in ("scored", "failed") for r in rows.values()):
                break
            time.sleep(1.0)
        rows = read_rows(database_url, accepted)
        report["orphans_after_sigterm"] = server.stop()
        runs = Counter(score_log.read_text().split()) if score_log.exists() else Counter()
        valid = report["accepted_ids"]
        # The database holds one result per submission by design (a late result is fenced
        # off); a run counted twice is a scoring that finished just before a kill -9 and was
        # computed again, its first result never recorded.
        report["scored"] = sum(1 for i in valid if i in rows and rows[i].status == "scored")
        report["scored_rerun"] = sum(1 for i in valid if runs[i] > 1)
        report["failed"] = sum(1 for i in valid if i in rows and rows[i].status == "failed")
        report["lost"] = sum(
            1 for i in valid if i not in rows or rows[i].status not in ("scored", "failed")
        )
        hang_rows = [rows[i] for i in report["hang_ids"] if i in rows]
        report["hang_attempts"] = sorted(r.attempts for r in hang_rows)
        report["hang_seconds"] = [
            round((r.finished_at - r.started_at).total_seconds(), 1)
            for r in hang_rows
            if r.finished_at and r.started_at
        ]
        return report
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def rush(
    args: argparse.Namespace,
    server: Server,
    port: int,
    keys: dict[str, str],
    ids: list[int],
    teams: dict[str, list[str]],
) -> dict[str, Any]:
    """The rush: every submission at once, beside stalled uploads, queries and probes."""
    url = server.url
    stop = threading.Event()
    stall_answers: Counter[str] = Counter()
    queries: list[Outcome] = []
    helpers = [
        threading.Thread(target=stall_loop, args=(port, keys[t], stop, stall_answers))
        for t in teams["stall"]
    ] + [
        threading.Thread(target=query_loop, args=(url, keys[t], stop, queries))
        for t in teams["query"]
    ]
    for thread in helpers:
        thread.start()
    time.sleep(3.0 if teams["stall"] else 0.0)  # the stalled uploads are in and waiting
    # Another team's valid submissions while the stalled uploads are open, before the rush.
    probes = [
        submit(url, keys[team], MIA, csv_body(ids, 10_000 + i))
        for i, team in enumerate(teams["probe"])
    ]
    jobs = [team for team in teams["rush"] for _ in range(args.per_team)]
    bodies = [csv_body(ids, i) for i in range(len(jobs))]
    barrier = threading.Barrier(len(jobs))

    retries = 20 if args.chaos else 0  # only while the server is killed on purpose

    def one(i: int) -> Outcome:
        barrier.wait(timeout=120)
        return submit(url, keys[jobs[i]], MIA, bodies[i], retries=retries, polite=args.polite)

    chaos = Chaos(server, rounds=args.chaos, interval=args.chaos_interval)
    chaos.start()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        outcomes = list(pool.map(one, range(len(jobs))))
    rush_seconds = time.monotonic() - started
    # The kills go on while the workers score what was accepted; then the server is up.
    chaos.join()
    stop.set()
    for thread in helpers:
        thread.join(timeout=30)
    statuses = Counter(o.status for o in outcomes if o.status is not None)
    reasons = Counter(o.error for o in outcomes if o.status not in (None, 202))
    errors = Counter(o.error for o in outcomes if o.status is None)
    refused_ok = all(o.retry_after is not None for o in outcomes if o.status in (429, 503))
    return {
        "requests": len(outcomes),
        "rush_seconds": round(rush_seconds, 1),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "refusals": dict(reasons.most_common()),
        "connection_errors": dict(errors),
        "refusals_have_retry_after": refused_ok,
        "accepted_ids": [o.submission_id for o in outcomes if o.submission_id],
        "submit_p50": percentile([o.seconds for o in outcomes if o.status], 0.5),
        "submit_p99": percentile([o.seconds for o in outcomes if o.status], 0.99),
        "probe_statuses": [p.status for p in probes],
        "probe_seconds": [round(p.seconds, 2) for p in probes],
        "stalled_answers": dict(stall_answers),
        "queries": len(queries),
        "query_statuses": dict(Counter(q.status or q.error for q in queries)),
        "query_p50": percentile([q.seconds for q in queries if q.status == 200], 0.5),
        "query_p99": percentile([q.seconds for q in queries if q.status == 200], 0.99),
        "chaos_orphans": chaos.orphans,
        "retried": sum(o.tries > 1 for o in outcomes),
        "tries": sum(o.tries for o in outcomes),
    }


def hang_phase(
    args: argparse.Namespace, url: str, keys: dict[str, str], ids: list[int], tag: str
) -> dict[str, Any]:
    """One team queues ``workers + 1`` hanging models, then another team a valid file."""
    import httpx

    hang_ids = []
    for _ in range(args.workers + 1):
        outcome = submit(url, keys[f"hang-{tag}"], MIA, HANG)
        if outcome.submission_id:
            hang_ids.append(outcome.submission_id)
    time.sleep(0.5)
    bystander = submit(url, keys[f"bystander-{tag}"], MIA, csv_body(ids, 99))
    waited = float("nan")
    if bystander.submission_id:
        start = time.monotonic()
        deadline = start + args.drain
        key = {"X-API-Key": keys[f"bystander-{tag}"]}
        while time.monotonic() < deadline:
            info = httpx.get(f"{url}/api/v1/submissions/{bystander.submission_id}", headers=key)
            if info.status_code == 200 and info.json()["status"] in ("scored", "failed"):
                waited = time.monotonic() - start
                break
            time.sleep(0.2)
    return {"hang_ids": hang_ids, "bystander_status": bystander.status, "bystander_wait": waited}


def show(report: dict[str, Any]) -> None:
    def ms(seconds: float) -> str:
        return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"

    limits = report["limits"]
    rows: list[tuple[str, Any]] = [
        ("database", report["database"]),
        ("requests (teams x per team)", report["requests"]),
        ("answered by status", report["statuses"]),
        ("  accepted (202)", report["statuses"].get(202, 0)),
        ("  5xx other than 503", report["server_errors"] - report["statuses"].get(503, 0)),
        ("  every 429/503 has Retry-After", report["refusals_have_retry_after"]),
        ("  refusals by cause", report["refusals"] or "-"),
        ("requests sent, retries included", report["tries"]),
        ("no answer (reset, refused, timeout)", report["connection_errors"] or 0),
        ("/submit p50 / p99", f"{ms(report['submit_p50'])} / {ms(report['submit_p99'])}"),
        ("rush wall time", f"{report['rush_seconds']} s"),
        (
            "probe submissions (status, s)",
            list(zip(report["probe_statuses"], report["probe_seconds"], strict=True)),
        ),
        ("stalled uploads answered", report["stalled_answers"] or "-"),
        ("/query answered", report["query_statuses"] or "-"),
        ("/query p50 / p99", f"{ms(report['query_p50'])} / {ms(report['query_p99'])}"),
        ("accepted: scored (one result each)", report["scored"]),
        ("accepted: failed", report["failed"]),
        ("accepted: lost", report["lost"]),
        ("accepted: scoring computed again after a kill", report["scored_rerun"]),
        (
            "scoring limit (CPU)",
            f"{limits['cpu_seconds']} s = max(1, {limits['factor']:g} x "
            f"{limits['reference_cpu_seconds']} s reference)",
        ),
        ("hanging models: attempts each", report["hang_attempts"]),
        ("hanging models: seconds each", report["hang_seconds"]),
        (
            "bystander behind them: status, wait",
            (report["bystander_status"], round(report["bystander_wait"], 1)),
        ),
        ("kill -9 rounds: processes left each", report["chaos_orphans"] or "-"),
        ("requests sent more than once", report["retried"]),
        ("processes left after SIGTERM", report["orphans_after_sigterm"]),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--per-team", type=int, default=4)
    parser.add_argument("--stalled", type=int, default=100, help="stalled uploads held open")
    parser.add_argument("--queries", type=int, default=4, help="clients querying /query")
    parser.add_argument("--probes", type=int, default=3, help="probe submissions")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    parser.add_argument(
        "--polite",
        type=int,
        default=0,
        help="times a rush client sends again after a 503's or 429's Retry-After",
    )
    parser.add_argument("--chaos", type=int, default=0, help="kill -9 rounds during the rush")
    parser.add_argument("--chaos-interval", type=float, default=15.0)
    parser.add_argument("--lease", type=float, default=5.0, help="the workers' lease, seconds")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait for scoring")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON too")
    args = parser.parse_args(argv)
    report = run(args)
    show(report)
    if args.json:
        slim = {k: v for k, v in report.items() if not k.endswith("_ids")}
        print(json.dumps(slim, default=str))


if __name__ == "__main__":
    main()

"""The arena under load: database sessions scoped to their step, bounded file checks, limits
of the check measured in CPU time, overload answered 503 and never blamed on a team."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import STRESS_TASK, ArenaHarness, detail, random_csv
from stress_kind import directive

from trustlab.server.errors import ApiError
from trustlab.server.intake import IntakeGate

TASK = "mia-small"
# An absolute path of two parts or more, as a server path would appear in a message.
SERVER_PATH = re.compile(r"(^|[\s'\"(=])/[\w.+@-]+/")


def test_more_concurrent_submissions_than_the_pool_holds_never_get_500(
    stress_arena: Callable[..., ArenaHarness], small_task_dir: Path
) -> None:
    n = 24
    harness = stress_arena(
        teams=tuple(f"team{i}" for i in range(n)),
        db_pool_size=2,
        db_max_overflow=2,
        db_pool_timeout=5.0,
        intake_queue_seconds=30.0,
    )
    body = random_csv(small_task_dir)
    start = threading.Barrier(n)

    def post(i: int) -> Any:
        start.wait(timeout=30)
        return harness.submit(TASK, body, team=f"team{i}")

    with ThreadPoolExecutor(max_workers=n) as pool:
        responses = list(pool.map(post, range(n)))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {202, 503}, codes
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0
            assert "nothing counted" in detail(response)
    assert codes.count(202) >= n // 2, [detail(r) for r in responses if r.status_code != 202]
    assert harness.count_rows() == codes.count(202)
    assert len(harness.stored_files()) == codes.count(202)
    board = harness.client.get(f"/api/v1/tasks/{TASK}/leaderboard")
    assert board.status_code == 200


def test_a_check_over_its_cpu_time_is_the_files_fault(
    stress_arena: Callable[..., ArenaHarness],
) -> None:
    harness = stress_arena(intake_cpu_seconds=1, intake_wall_seconds=60.0)
    spinning = harness.submit(STRESS_TASK, directive("spin-check"))
    assert spinning.status_code == 400, spinning.text
    assert "CPU-time limit of 1 s" in detail(spinning)
    assert harness.count_rows() == 0


@pytest.mark.slow
def test_a_check_starved_past_its_backstop_is_the_arenas_fault(
    stress_arena: Callable[..., ArenaHarness], small_task_dir: Path
) -> None:
    harness = stress_arena(
        spec={"cooldown": {"accepted": 3600, "failed": 3600}}, intake_wall_seconds=2.0
    )
    # A check that gets no CPU time for its wall-clock backstop (here: one that sleeps, as on
    # an overloaded machine) is the arena's trouble: 503, nothing stored, nothing counted.
    stalled = harness.submit(STRESS_TASK, directive("sleep-check"))
    assert stalled.status_code == 503, stalled.text
    assert int(stalled.headers["Retry-After"]) > 0
    message = detail(stalled)
    assert "no fault" in message and "nothing counted" in message
    assert harness.count_rows() == 0 and harness.stored_files() == []
    # The refusal did not start the one-hour cooldown.
    assert harness.submit(STRESS_TASK, random_csv(small_task_dir)).status_code == 202


@pytest.mark.parametrize("action", ["leak-check", "crash-check"])
def test_messages_never_show_server_paths(
    stress_arena: Callable[..., ArenaHarness], action: str
) -> None:
    harness = stress_arena()
    response = harness.submit(STRESS_TASK, directive(action), filename="mine.csv")
    assert response.status_code in (400, 500), response.text
    message = detail(response)
    data_dir = harness.settings.data_dir
    assert str(data_dir) not in message and str(data_dir.resolve()) not in message
    assert ".incoming" not in message
    assert not SERVER_PATH.search(message), message
    if action == "leak-check":
        assert "'mine.csv'" in message and "'mia-stress'" in message


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _gate(**overrides: Any) -> IntakeGate:
    values: dict[str, Any] = {
        "upload_slots": 3,
        "team_upload_slots": 2,
        "check_slots": 1,
        "queue_seconds": 0.3,
        "retry_after": 7,
    }
    values.update(overrides)
    return IntakeGate(**values)


def test_uploads_are_capped_per_team_then_in_all() -> None:
    async def scenario() -> list[int]:
        gate = _gate()
        refused = []
        async with gate.upload(1), gate.upload(1):
            try:
                async with gate.upload(1):
                    pass
            except ApiError as exc:
                refused.append(exc.status_code)
                assert exc.headers["Retry-After"] == "7"
            async with gate.upload(2):
                try:
                    async with gate.upload(3):
                        pass
                except ApiError as exc:
                    refused.append(exc.status_code)
                    assert "nothing counted" in exc.detail
                assert gate.uploads == 3
        assert gate.uploads == 0
        async with gate.upload(1):  # slots come back
            pass
        return refused

    assert _run(scenario()) == [429, 503]


def test_checks_run_one_per_team_and_a_bounded_number_in_all() -> None:
    async def hold(gate: IntakeGate, team: int, seconds: float, log: list[str]) -> None:
        try:
            async with gate.check(team):
                log.append(f"start {team}")
                await asyncio.sleep(seconds)
                log.append(f"end {team}")
        except ApiError as exc:
            log.append(f"{exc.status_code} {team}")

    async def scenario(check_slots: int, queue: float, plan: list[tuple[int, float]]) -> list[str]:
        gate = _gate(check_slots=check_slots, queue_seconds=queue)
        log: list[str] = []
        tasks = []
        for team, seconds in plan:
            tasks.append(asyncio.create_task(hold(gate, team, seconds, log)))
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        assert gate.checks == 0
        return log

    # A team's second file waits for its first, even with checkers free; too long: 503.
    log = _run(scenario(4, 0.2, [(1, 0.5), (1, 0.0)]))
    assert log == ["start 1", "503 1", "end 1"]
    # ... and within the queue time it runs after the first.
    log = _run(scenario(4, 2.0, [(1, 0.2), (1, 0.0)]))
    assert log == ["start 1", "end 1", "start 1", "end 1"]
    # One checker: another team waits its turn (first come, first served), then gets 503.
    log = _run(scenario(1, 0.2, [(1, 0.5), (2, 0.0)]))
    assert log == ["start 1", "503 2", "end 1"]
    log = _run(scenario(1, 2.0, [(1, 0.2), (2, 0.0), (3, 0.0)]))
    assert log == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


def test_the_intake_concurrency_follows_cores_and_memory(
    make_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustlab.server import settings as settings_module

    monkeypatch.setattr(settings_module, "cpu_cores", lambda: 16)
    monkeypatch.setattr(settings_module, "host_memory_mb", lambda: 20_000)
    # 80% of 20 GB, less 2 workers x 4 GiB, leaves room for 7 checks of 1 GiB.
    settings = make_settings(workers=2, job_memory_mb=4096, intake_memory_mb=1024)
    assert settings.intake_concurrency == 7
    monkeypatch.setattr(settings_module, "cpu_cores", lambda: 2)
    assert settings.intake_concurrency == 2
    assert make_settings(intake_slots=5).intake_concurrency == 5
    monkeypatch.setattr(settings_module, "host_memory_mb", lambda: 1000)
    assert settings.intake_concurrency == 1  # never none at all

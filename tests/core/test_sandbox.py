"""run_limited: JSON results, re-raised trustlab errors, and the memory, CPU and time limits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sandbox_targets as targets

from trustlab.core.errors import SandboxError, SubmissionError, TrustlabError, WeightsError
from trustlab.core.sandbox import (
    MSG_CRASH,
    MSG_MEMORY,
    CpuLimitExceeded,
    Limits,
    WallClockExceeded,
    run_limited,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="resource limits need POSIX")


def process_gone(pid: int, *, timeout: float = 5.0) -> bool:
    """Whether ``pid`` has exited (and been reaped) within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie still answers kill(0); check its state where /proc exists.
        stat = Path(f"/proc/{pid}/stat")
        try:
            if stat.read_text().split(")", 1)[1].split()[0] == "Z":
                return True
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    return False


def test_returns_the_json_result_from_another_process() -> None:
    result = run_limited(targets.add, args=(2, 3))
    assert result["sum"] == 5
    assert result["items"] == [2, 3]
    assert result["pid"] != os.getpid()


@pytest.mark.parametrize("value", [None, "text", 1.5, [1, "a", None], {"k": {"n": [1]}}])
def test_plain_data_round_trips(value: object) -> None:
    assert run_limited(targets.echo, args=(value,)) == value


@pytest.mark.parametrize(
    ("target", "error"),
    [
        (targets.raise_submission_error, SubmissionError),
        (targets.raise_weights_error, WeightsError),
    ],
)
def test_child_trustlab_error_is_reraised_with_class_and_message(
    target: object, error: type[TrustlabError]
) -> None:
    message = "Line 7: score 'x' for id 3 is not a number; give a finite number."
    with pytest.raises(error) as info:
        run_limited(target, args=(message,))  # type: ignore[arg-type]
    assert type(info.value) is error
    assert str(info.value) == message


def test_other_child_exception_becomes_an_internal_sandbox_error() -> None:
    with pytest.raises(SandboxError, match="internal error: ValueError: boom"):
        run_limited(targets.raise_value_error, args=("boom",))


def test_memory_limit() -> None:
    limits = Limits(memory_mb=1024)
    with pytest.raises(SandboxError, match="memory") as info:
        run_limited(targets.allocate, args=(3 * 1024,), limits=limits)
    assert str(info.value) == MSG_MEMORY.format(mb=1024)


def test_memory_within_the_limit_is_fine() -> None:
    assert run_limited(targets.allocate, args=(16,), limits=Limits(memory_mb=4096)) == 16 << 20


def test_cpu_limit() -> None:
    limits = Limits(cpu_seconds=1, wall_seconds=30)
    with pytest.raises(CpuLimitExceeded, match="CPU") as info:
        run_limited(targets.busy_loop, args=(20.0,), limits=limits, wait_interval=0.1)
    assert "1 s" in str(info.value)  # stopped by the CPU limit, not the 30 s wall clock
    assert isinstance(info.value, SandboxError)


def test_wall_clock_limit_stops_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    limits = Limits(wall_seconds=1.0)
    with pytest.raises(WallClockExceeded, match="wall-clock") as info:
        run_limited(
            targets.sleep_with_pid, args=(str(pid_file), 30.0), limits=limits, wait_interval=0.1
        )
    assert "1 s" in str(info.value)
    # It slept: the CPU time it had used tells a starved or waiting job from a busy one.
    assert info.value.cpu_seconds is not None and info.value.cpu_seconds < 0.9
    pid = int(pid_file.read_text())
    assert process_gone(pid)


def test_child_that_exits_reports_its_exit_code() -> None:
    with pytest.raises(SandboxError) as info:
        run_limited(targets.exit_hard, args=(3,), wait_interval=0.1)
    assert str(info.value) == MSG_CRASH.format(code=3)
    assert "exit code 3" in str(info.value)


@pytest.mark.parametrize("target", [targets.not_json, targets.nan_result])
def test_result_that_is_not_json(target: object) -> None:
    with pytest.raises(SandboxError, match="not JSON-serialisable"):
        run_limited(target)  # type: ignore[arg-type]


def test_on_wait_is_called_while_the_child_runs(tmp_path: Path) -> None:
    calls: list[float] = []
    result = run_limited(
        targets.sleep_with_pid,
        args=(str(tmp_path / "pid"), 0.6),
        on_wait=lambda: calls.append(time.monotonic()),
        wait_interval=0.05,
    )
    assert result == "woke up"
    assert len(calls) >= 3


class LeaseLost(Exception):
    pass


def test_exception_from_on_wait_propagates_and_kills_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    calls = 0

    def on_wait() -> None:
        nonlocal calls
        calls += 1
        if pid_file.exists() and calls >= 3:
            raise LeaseLost("the lease was taken over")

    with pytest.raises(LeaseLost, match="taken over"):
        run_limited(
            targets.sleep_with_pid,
            args=(str(pid_file), 30.0),
            on_wait=on_wait,
            wait_interval=0.1,
        )
    assert process_gone(int(pid_file.read_text()))


def test_the_child_leads_its_own_process_group() -> None:
    info = run_limited(targets.process_group)
    assert info["pgid"] == info["pid"] != os.getpgid(0)


def test_stopping_a_job_stops_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    with pytest.raises(WallClockExceeded):
        run_limited(
            targets.sleep_with_child,
            args=(str(pid_file), 30.0),
            limits=Limits(wall_seconds=2.0),
            wait_interval=0.1,
        )
    child, grandchild = (int(p) for p in pid_file.read_text().split())
    assert process_gone(child) and process_gone(grandchild)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_dies_with_the_process_that_ran_it(tmp_path: Path) -> None:
    """``kill -9`` of a worker must not leave its scoring child running."""
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(targets.__file__).parent)!r})
        import sandbox_targets
        from trustlab.core.sandbox import Limits, run_limited
        if __name__ == "__main__":
            run_limited(sandbox_targets.sleep_with_pid, args=({str(pid_file)!r}, 60.0),
                        limits=Limits(wall_seconds=120))
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()):
            assert owner.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        child = int(pid_file.read_text())
        assert not process_gone(child, timeout=0.5)
        owner.kill()
        owner.wait(timeout=10)
        assert process_gone(child, timeout=10)
    finally:
        if owner.poll() is None:
            owner.kill()

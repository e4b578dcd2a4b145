"""Module-level functions for the sandbox tests (``run_limited`` pickles them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from trustlab.core.errors import SubmissionError, WeightsError


def add(a: int, b: int) -> dict[str, Any]:
    return {"sum": a + b, "items": [a, b], "pid": os.getpid()}


def echo(value: Any) -> Any:
    return value


def raise_submission_error(message: str) -> None:
    raise SubmissionError(message)


def raise_weights_error(message: str) -> None:
    raise WeightsError(message)


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def allocate(mib: int) -> int:
    """Allocate and touch ``mib`` MiB; returns the size (only if the limit allowed it)."""
    block = bytearray(mib * 1024 * 1024)
    return len(block)


def busy_loop(seconds: float) -> int:
    """Burn CPU for up to ``seconds`` of wall-clock time."""
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        count += 1
    return count


def sleep_with_pid(pid_file: str, seconds: float) -> str:
    """Record this process's id in ``pid_file``, then sleep."""
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "woke up"


def exit_hard(code: int) -> None:
    os._exit(code)


def not_json() -> Any:
    return {"a set": {1, 2}}


def nan_result() -> float:
    return float("nan")


def process_group() -> dict[str, int]:
    """This process's id and process group."""
    return {"pid": os.getpid(), "pgid": os.getpgid(0)}


def sleep_with_child(pid_file: str, seconds: float) -> str:
    """Start a grandchild that sleeps, record both ids in ``pid_file``, then sleep."""
    import subprocess
    import sys

    grandchild = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    Path(pid_file).write_text(f"{os.getpid()} {grandchild.pid}")
    time.sleep(seconds)
    return "woke up"

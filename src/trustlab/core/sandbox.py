"""Run untrusted work in a separate process with memory, CPU-time and wall-clock limits.

Everything that touches a file a team submitted (parsing a score file, loading weights,
scoring a model) runs through :func:`run_limited`. The child process is forked from a clean
fork server, sets its own resource limits before doing anything else, and sends its result
back as JSON: nothing the child produces is unpickled by the parent.

The child never outlives the process that asked for it: it leads a process group of its own,
which the parent kills whole when it stops the job. On Linux, it also asks the kernel to kill
it when its parent, the fork server, dies; and the fork server, started from a thread that
lives as long as its process, asks to be killed when that process dies. So ``kill -9`` of a
worker takes its fork server and its scoring child with it.

The CPU-time limit (``RLIMIT_CPU``) is what bounds a job's work: it measures the job itself,
whatever else the machine is doing, so hitting it says something about the job
(:class:`CpuLimitExceeded`). The wall-clock limit is a backstop for a job that waits without
computing, or one starved of CPU by a loaded machine (:class:`WallClockExceeded`); it says
more about the machine than about the job.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

from trustlab.core import errors

MSG_TIMEOUT = "The job took longer than its wall-clock limit of {seconds:g} s and was stopped."
MSG_CPU = "The job used more than its CPU-time limit of {seconds} s and was stopped."
MSG_MEMORY = "The job ran out of memory (limit {mb} MiB) and was stopped."
MSG_CRASH = "The job's process died unexpectedly (exit code {code})."
MSG_INTERNAL = "The job failed with an internal error: {error}"
MSG_NOT_JSON = "The job's result is not JSON-serialisable: {error}"

PR_SET_PDEATHSIG = 1


class CpuLimitExceeded(errors.SandboxError):
    """The job used up its CPU-time limit: a property of the job, not of the machine's load."""


class WallClockExceeded(errors.SandboxError):
    """The job outlasted its wall-clock backstop; ``cpu_seconds`` is the CPU time it had used.

    Under a CPU-time limit that is lower than the wall-clock one, this means the job waited
    or was starved of CPU by a busy machine, so callers treat it as the machine's trouble.
    """

    def __init__(self, message: str, *, cpu_seconds: float | None = None) -> None:
        super().__init__(message)
        self.cpu_seconds = cpu_seconds


_ERROR_TYPES: dict[str, type[errors.TrustlabError]] = {
    cls.__name__: cls
    for cls in (
        errors.TrustlabError,
        errors.ConfigurationError,
        errors.DataError,
        errors.WeightsError,
        errors.SubmissionError,
        errors.SandboxError,
        errors.InternalJobError,
    )
}


@dataclass(frozen=True)
class Limits:
    """Resource limits for one job.

    Parameters
    ----------
    memory_mb : int
        Address-space limit of the child (``RLIMIT_AS``), in MiB.
    cpu_seconds : int
        CPU-time limit of the child (``RLIMIT_CPU``).
    wall_seconds : float
        Wall-clock limit; the parent kills the child after it.
    threads : int
        Number of intra-op threads the child's torch uses.
    """

    memory_mb: int = 4096
    cpu_seconds: int = 600
    wall_seconds: float = 900.0
    threads: int = 1


def _set_limits(limits: Limits) -> None:
    import resource

    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ["OMP_NUM_THREADS"] = str(limits.threads)
    try:
        import torch

        torch.set_num_threads(limits.threads)
    except Exception:  # noqa: S110 - torch is optional for the job itself
        pass


def die_with_parent(signum: int = signal.SIGKILL) -> bool:
    """Have Linux send ``signum`` to this process when its parent dies (``PR_SET_PDEATHSIG``).

    Returns False where the platform has no such request; then only the parent's own
    clean-up and process groups stop its children.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def cpu_seconds_of(pid: int) -> float | None:
    """CPU time (user + system) a live process has used so far, where ``/proc`` tells it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _detach(owner: int) -> None:
    """Tie this child's life to its parent's and give it a process group of its own."""
    die_with_parent(signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if not process_alive(owner):  # the owner died before the request above took effect
        os._exit(1)


def _child(
    func: Callable[..., Any],
    args: Sequence[Any],
    conn: Connection,
    limits: Limits,
    owner: int,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _detach(owner)
    try:
        _set_limits(limits)
        result = func(*args)
        try:
            payload = json.dumps({"ok": True, "result": result}, allow_nan=False)
        except (TypeError, ValueError) as exc:
            payload = json.dumps(
                {"ok": False, "type": "SandboxError", "error": MSG_NOT_JSON.format(error=exc)}
            )
    except MemoryError:
        payload = json.dumps(
            {"ok": False, "type": "SandboxError", "error": MSG_MEMORY.format(mb=limits.memory_mb)}
        )
    except errors.TrustlabError as exc:
        name = type(exc).__name__
        kind = name if name in _ERROR_TYPES else "TrustlabError"
        for base in type(exc).__mro__:
            if base.__name__ in _ERROR_TYPES:
                kind = base.__name__
                break
        payload = json.dumps({"ok": False, "type": kind, "error": str(exc)})
    except BaseException as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        payload = json.dumps(
            {"ok": False, "type": "InternalJobError", "error": MSG_INTERNAL.format(error=detail)}
        )
    conn.send_bytes(payload.encode())
    conn.close()


def _kill_tree(proc: Any) -> None:
    """SIGKILL the child's process group (it and anything it started), then the child."""
    if proc.pid is not None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.kill()


_CONTEXT: Any = None
_PRELOAD: list[str] = ["trustlab.core.sandbox", "numpy", "torch"]


def preload(modules: Sequence[str]) -> None:
    """Have the fork server import ``modules`` once, so that every child starts with them.

    A child then skips their import, which for a task's code can take far longer than the
    check it runs. Call it before the first :func:`run_limited` of the process; once the
    fork server runs, later calls change nothing. A module that fails to import is skipped.
    """
    for module in modules:
        if module and module not in _PRELOAD:
            _PRELOAD.append(module)
    if _CONTEXT is not None and _CONTEXT.get_start_method() == "forkserver":
        _CONTEXT.set_forkserver_preload(list(_PRELOAD))


def start_fork_server() -> None:
    """Start the fork server now (it imports the preloaded modules in the background), so
    that the first :func:`run_limited` does not wait for it; a no-op where children are
    spawned rather than forked."""
    _context()


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(list(_PRELOAD))
        _CONTEXT = ctx
    if _CONTEXT.get_start_method() == "forkserver":
        _ensure_fork_server()
    return _CONTEXT


_KEEPER: threading.Thread | None = None
_KEEPER_LOCK = threading.Lock()
_KEEPER_REQUESTS: queue.SimpleQueue[threading.Event] = queue.SimpleQueue()


def _keep_fork_server() -> None:
    """Start (or restart) the fork server on request, from this thread, which never ends.

    Linux ties a parent-death signal to the thread that started the process, so the fork
    server must not be started from a short-lived thread (a server's thread pool retires idle
    threads): its death would take every running job with it.
    """
    from multiprocessing import forkserver

    while True:
        done = _KEEPER_REQUESTS.get()
        try:
            forkserver.ensure_running()
        except Exception:  # noqa: S110 - the caller's own start of the child will raise it
            pass
        finally:
            done.set()


def _ensure_fork_server() -> None:
    global _KEEPER
    with _KEEPER_LOCK:
        if _KEEPER is None:
            _KEEPER = threading.Thread(
                target=_keep_fork_server, daemon=True, name="trustlab-fork-server"
            )
            _KEEPER.start()
    done = threading.Event()
    _KEEPER_REQUESTS.put(done)
    done.wait()


def _guard_fork_server() -> None:
    """In the fork server, which imports this module as it starts: die with its parent."""
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.endswith("forkserver.py"):
            die_with_parent(signal.SIGKILL)
            return
        frame = frame.f_back


def run_limited(
    func: Callable[..., Any],
    *,
    args: Sequence[Any] = (),
    limits: Limits | None = None,
    on_wait: Callable[[], None] | None = None,
    wait_interval: float = 1.0,
) -> Any:
    """Call ``func(*args)`` in a limited child process and return its JSON result.

    Parameters
    ----------
    func : callable
        A module-level function (it is looked up by name in the child). It must return
        JSON-serialisable data.
    args : sequence
        Positional arguments: plain data such as paths, strings and dicts.
    limits : Limits, optional
        Memory, CPU-time and wall-clock limits; :class:`Limits` defaults if omitted.
    on_wait : callable, optional
        Called every ``wait_interval`` seconds while the child runs (a worker renews its
        lease here). An exception it raises stops the child and propagates.

    Raises
    ------
    TrustlabError
        The child's own trustlab error, re-raised with the same class and message.
    CpuLimitExceeded
        The child used up its CPU-time limit.
    WallClockExceeded
        The child outlasted the wall-clock limit.
    SandboxError
        The child crashed or ran out of memory.

    Examples
    --------
    >>> run_limited(max, args=(1, 2))
    2
    """
    limits = limits or Limits()
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child, args=(func, list(args), send, limits, os.getpid()), daemon=True
    )
    proc.start()
    send.close()
    deadline = time.monotonic() + limits.wall_seconds
    raw: bytes | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WallClockExceeded(
                    MSG_TIMEOUT.format(seconds=limits.wall_seconds),
                    cpu_seconds=cpu_seconds_of(proc.pid),
                )
            if recv.poll(min(wait_interval, remaining)):
                try:
                    raw = recv.recv_bytes()
                except EOFError:
                    raw = b""
                break
            if not proc.is_alive() and not recv.poll(0):
                raw = b""
                break
            if on_wait is not None:
                on_wait()
    finally:
        if raw is None and proc.is_alive():
            _kill_tree(proc)
        proc.join(timeout=5)
        if proc.is_alive():
            _kill_tree(proc)
            proc.join()
        recv.close()
    if not raw:
        code = proc.exitcode
        if code == -signal.SIGXCPU:
            raise CpuLimitExceeded(MSG_CPU.format(seconds=limits.cpu_seconds))
        raise errors.SandboxError(MSG_CRASH.format(code=code))
    message = json.loads(raw)
    if message["ok"]:
        return message["result"]
    raise _ERROR_TYPES.get(message["type"], errors.SandboxError)(message["error"])


_guard_fork_server()

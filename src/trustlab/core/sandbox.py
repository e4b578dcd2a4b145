"""Run untrusted work in a separate process with memory, CPU-time and wall-clock limits.

Everything that touches a file a team submitted (parsing a score file, loading weights,
scoring a model) runs through :func:`run_limited`. The child process is forked from a clean
fork server, sets its own resource limits before doing anything else, and sends its result
back as JSON: nothing the child produces is unpickled by the parent.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from trustlab.core import errors

MSG_TIMEOUT = "The job took longer than its wall-clock limit of {seconds:g} s and was stopped."
MSG_CPU = "The job used more than its CPU-time limit of {seconds} s and was stopped."
MSG_MEMORY = "The job ran out of memory (limit {mb} MiB) and was stopped."
MSG_CRASH = "The job's process died unexpectedly (exit code {code})."
MSG_INTERNAL = "The job failed with an internal error: {error}"
MSG_NOT_JSON = "The job's result is not JSON-serialisable: {error}"

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


def _child(func: Callable[..., Any], args: Sequence[Any], conn: Connection, limits: Limits) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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


_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["trustlab.core.sandbox", "numpy", "torch"])
        _CONTEXT = ctx
    return _CONTEXT


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
    SandboxError
        The child crashed, ran out of memory or time.

    Examples
    --------
    >>> run_limited(max, args=(1, 2))
    2
    """
    limits = limits or Limits()
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(func, list(args), send, limits), daemon=True)
    proc.start()
    send.close()
    deadline = time.monotonic() + limits.wall_seconds
    raw: bytes | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.SandboxError(MSG_TIMEOUT.format(seconds=limits.wall_seconds))
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
            proc.kill()
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        recv.close()
    if not raw:
        code = proc.exitcode
        if code == -signal.SIGXCPU:
            raise errors.SandboxError(MSG_CPU.format(seconds=limits.cpu_seconds))
        raise errors.SandboxError(MSG_CRASH.format(code=code))
    message = json.loads(raw)
    if message["ok"]:
        return message["result"]
    raise _ERROR_TYPES.get(message["type"], errors.SandboxError)(message["error"])

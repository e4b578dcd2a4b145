"""Stalled uploads against a real server on loopback, with raw sockets: a client that stops
sending is cut off with 408 and its connection closed; a team cannot open more than its share
of uploads; and meanwhile every other team is served."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import ThreadedServer, install_task, random_csv
from sqlalchemy import func, select

from trustlab.server.models import Submission

TASK = "mia-small"
IDLE = 8.0  # the server's upload idle timeout in these tests


@pytest.fixture
def serve(
    make_settings: Callable[..., Any], small_task_dir: Path, data_dir: Path
) -> Iterator[Callable[..., ThreadedServer]]:
    """Start a server for the small task (teams alpha and beta) under settings overrides."""
    install_task(small_task_dir, data_dir)
    with ExitStack() as stack:

        def start(**overrides: Any) -> ThreadedServer:
            values = {"upload_idle_seconds": IDLE, "team_upload_slots": 4, "upload_slots": 64}
            running = stack.enter_context(ThreadedServer(make_settings(**{**values, **overrides})))
            running.add_team("alpha")
            running.add_team("beta")
            return running

        yield start


def _stall(port: int, key: str, *, declared: int = 900_000) -> socket.socket:
    """Send the headers of a large upload and a few bytes of its body, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (
        f"POST /submit/{TASK} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\nid,sc'
    sock.sendall(head.encode() + body)
    return sock


def _answer(sock: socket.socket, *, timeout: float) -> tuple[int, bytes, bool]:
    """The status and headers the server sent, and whether the server closed the connection
    (rather than our read giving up after ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    closed = False
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        except TimeoutError:
            break
        if not chunk:
            closed = True
            break
        data += chunk
    sock.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data, closed


def _unanswered(sock: socket.socket) -> bool:
    """Whether the server has sent nothing on ``sock`` yet and keeps it open."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # data, or b"" once closed: either way answered
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


@pytest.mark.slow
def test_stalled_uploads_are_cut_off_and_do_not_hold_up_other_teams(
    serve: Callable[..., ThreadedServer], small_task_dir: Path
) -> None:
    server = serve()
    stalled = [_stall(server.port, server.keys["alpha"]) for _ in range(20)]
    time.sleep(0.5)  # let the server take them in
    response = httpx.post(
        f"{server.url}/submit/{TASK}",
        headers={"X-API-Key": server.keys["beta"]},
        files={"file": ("s.csv", random_csv(small_task_dir).encode())},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    # Accepted while alpha's stalled uploads were still open and unanswered: nothing waited
    # for them to be cut off.
    assert sum(_unanswered(sock) for sock in stalled) >= 4  # alpha's share, read in
    answers = [_answer(sock, timeout=IDLE + 10) for sock in stalled]
    statuses = sorted(status for status, _, _ in answers)
    # Four uploads (alpha's share) were read until they stalled; the rest refused at once.
    assert statuses == [408] * 4 + [429] * 16, statuses
    for status, data, closed in answers:
        if status == 408:
            assert b"stalled" in data and b"connection: close" in data.lower()
        else:
            assert b"retry-after" in data.lower()
        assert closed  # the server closed every connection
    with server.arena.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 1
    # Alpha can submit again once its uploads are gone: nothing was counted.
    again = httpx.post(
        f"{server.url}/submit/{TASK}",
        headers={"X-API-Key": server.keys["alpha"]},
        files={"file": ("s.csv", random_csv(small_task_dir).encode())},
        timeout=60,
    )
    assert again.status_code == 202, again.text


@pytest.mark.slow
def test_an_upload_far_too_slow_is_cut_off(serve: Callable[..., ThreadedServer]) -> None:
    server = serve(upload_seconds=1.0)  # 20 kB may take 1 s + 20 kB / (20 kB/s) = 2 s
    sock = _stall(server.port, server.keys["alpha"], declared=20_000)
    for _ in range(6):  # a byte every half second: never idle, but far too slow
        time.sleep(0.5)
        try:
            sock.sendall(b"0")
        except OSError:
            break
    status, data, _ = _answer(sock, timeout=10)
    assert status == 408 and b"too slow" in data

"""Durable storage of submitted files, and the sweep of what crashed processes left."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trustlab.server import storage


def test_receive_counts_hashes_and_stops_past_the_limit(tmp_path: Path) -> None:
    folder = storage.IncomingFolder(tmp_path)
    incoming = storage.receive(io.BytesIO(b"abc"), folder=folder.path, limit=10)
    assert incoming.size == 3 and incoming.path.read_bytes() == b"abc"
    assert incoming.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(storage.TooLarge):
        storage.receive(io.BytesIO(b"x" * 11), folder=folder.path, limit=10)
    assert [p.name for p in folder.path.iterdir()] == [incoming.path.name]
    folder.close()
    assert list((tmp_path / storage.INCOMING).iterdir()) == []


def test_commit_moves_the_file_into_place(tmp_path: Path) -> None:
    folder = storage.IncomingFolder(tmp_path)
    incoming = storage.receive(io.BytesIO(b"data"), folder=folder.path, limit=10)
    storage.flush(incoming)
    final = storage.commit_file(incoming, root=tmp_path, relative="task/sub/file.csv")
    assert final.read_bytes() == b"data" and not incoming.path.exists()
    storage.discard(final)
    assert not final.parent.exists()


def test_sweep_removes_only_stale_loose_uploads(tmp_path: Path) -> None:
    loose = tmp_path / storage.INCOMING
    loose.mkdir()
    stale, fresh = loose / "old", loose / "new"
    stale.write_bytes(b"old")
    fresh.write_bytes(b"new")
    past = time.time() - 3600
    os.utime(stale, (past, past))
    assert storage.sweep_incoming(tmp_path) == 1
    assert not stale.exists() and fresh.exists()


def test_the_sweep_spares_live_processes_and_clears_dead_ones_at_once(tmp_path: Path) -> None:
    mine = storage.IncomingFolder(tmp_path)
    storage.receive(io.BytesIO(b"in progress"), folder=mine.path, limit=100)
    # Another process receives a file and dies without cleaning up (as after kill -9).
    script = textwrap.dedent(
        f"""
        import io, os
        from pathlib import Path
        from trustlab.server import storage
        folder = storage.IncomingFolder(Path({str(tmp_path)!r}))
        storage.receive(io.BytesIO(b"half"), folder=folder.path, limit=100)
        print(folder.path, flush=True)
        os._exit(0)
        """
    )
    dead = Path(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    assert dead.is_dir() and len(list(dead.iterdir())) == 1
    assert storage.sweep_incoming(tmp_path) == 1  # fresh, but its owner is gone
    assert not dead.exists()
    assert len(list(mine.path.iterdir())) == 1  # this process is alive: untouched
    mine.close()


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("a.csv", ".csv"), ("W.SafeTensors", ".safetensors"), ("x", ""), ("a.../", "")],
)
def test_safe_suffix(name: str, suffix: str) -> None:
    assert storage.safe_suffix(name) == suffix

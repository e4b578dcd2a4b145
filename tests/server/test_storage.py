"""Durable storage of submitted files."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from trustlab.server import storage


def test_receive_counts_hashes_and_stops_past_the_limit(tmp_path: Path) -> None:
    incoming = storage.receive(io.BytesIO(b"abc"), root=tmp_path, limit=10)
    assert incoming.size == 3 and incoming.path.read_bytes() == b"abc"
    assert incoming.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(storage.TooLarge):
        storage.receive(io.BytesIO(b"x" * 11), root=tmp_path, limit=10)
    assert [p.name for p in (tmp_path / ".incoming").iterdir()] == [incoming.path.name]


def test_commit_moves_the_file_into_place(tmp_path: Path) -> None:
    incoming = storage.receive(io.BytesIO(b"data"), root=tmp_path, limit=10)
    final = storage.commit_file(incoming, root=tmp_path, relative="task/sub/file.csv")
    assert final.read_bytes() == b"data" and not incoming.path.exists()
    storage.discard(final)
    assert not final.parent.exists()


def test_sweep_removes_only_stale_uploads(tmp_path: Path) -> None:
    stale = storage.receive(io.BytesIO(b"old"), root=tmp_path, limit=10)
    fresh = storage.receive(io.BytesIO(b"new"), root=tmp_path, limit=10)
    past = time.time() - 7 * 3600
    os.utime(stale.path, (past, past))
    assert storage.sweep_incoming(tmp_path) == 1
    assert not stale.path.exists() and fresh.path.exists()


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("a.csv", ".csv"), ("W.SafeTensors", ".safetensors"), ("x", ""), ("a.../", "")],
)
def test_safe_suffix(name: str, suffix: str) -> None:
    assert storage.safe_suffix(name) == suffix

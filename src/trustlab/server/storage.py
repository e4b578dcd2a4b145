"""Durable storage of submitted files under the data folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


@dataclass(frozen=True)
class Incoming:
    """An upload copied to a temporary file, with its size and hash."""

    path: Path
    size: int
    sha256: str


class TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def safe_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,15}", suffix) else ""


def receive(source: BinaryIO, *, root: Path, limit: int) -> Incoming:
    """Copy ``source`` into ``root/.incoming``, stopping with :class:`TooLarge` past ``limit``."""
    incoming = root / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    path = incoming / uuid.uuid4().hex
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(size)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Incoming(path=path, size=size, sha256=digest.hexdigest())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(incoming: Incoming, *, root: Path, relative: str) -> Path:
    """Move an incoming file to ``root/relative`` durably (rename + directory fsync)."""
    final = root / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(incoming.path, final)
    _fsync_dir(final.parent)
    return final


def discard(path: Path) -> None:
    """Remove a stored file and its now-empty folder."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def sweep_incoming(root: Path, *, older_than: float = 6 * 3600) -> int:
    """Delete uploads a crash left half-received; returns how many were removed.

    Only files untouched for ``older_than`` seconds go: another server process may be
    receiving or checking the others right now.
    """
    incoming = root / ".incoming"
    if not incoming.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for path in incoming.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed

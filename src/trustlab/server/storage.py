"""Durable storage of submitted files under the data folder.

Uploads are received into a folder of their own per server process,
``submissions/.incoming/<instance>/``, which the process holds an exclusive lock on for as
long as it lives (:class:`IncomingFolder`). The lock dies with the process, however it ends,
so the start-up sweep (:func:`sweep_incoming`) removes the folders of dead processes at once
and never touches a file another live process is still receiving or checking.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
INCOMING = ".incoming"
LOCK_SUFFIX = ".lock"
#: Loose files directly in ``.incoming`` (the layout before per-process folders) older than
#: this are removed by the sweep.
LOOSE_FILE_SECONDS = 600.0


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


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, the sweep falls back to the files' age
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class IncomingFolder:
    """This process's folder for uploads in progress, locked for the life of the process.

    Parameters
    ----------
    root : Path
        The submissions folder; the folder is ``root/.incoming/<instance>``.
    """

    def __init__(self, root: Path) -> None:
        base = root / INCOMING
        base.mkdir(parents=True, exist_ok=True)
        instance = uuid.uuid4().hex
        self._lock_path = base / f"{instance}{LOCK_SUFFIX}"
        # The lock file is created and locked before the folder exists, so a sweep never
        # sees the folder without its owner's lock.
        self._fd: int | None = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        _try_lock(self._fd)
        self.path = base / instance
        self.path.mkdir()

    def close(self) -> None:
        """Remove the folder (and whatever is left in it) and release the lock."""
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock_path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def receive(source: BinaryIO, *, folder: Path, limit: int) -> Incoming:
    """Copy ``source`` into ``folder``, stopping with :class:`TooLarge` past ``limit``.

    The copy is not flushed to disk here: refused files never need to be, and :func:`flush`
    does it for the ones that are kept.
    """
    path = folder / uuid.uuid4().hex
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
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Incoming(path=path, size=size, sha256=digest.hexdigest())


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flush(incoming: Incoming) -> None:
    """Flush an incoming file's contents to disk, before :func:`commit_file` (and outside any
    lock: it can take a while on a busy disk)."""
    _fsync(incoming.path)


def commit_file(incoming: Incoming, *, root: Path, relative: str) -> Path:
    """Move a flushed incoming file to ``root/relative`` durably (rename, directory fsync)."""
    final = root / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(incoming.path, final)
    _fsync(final.parent)
    return final


def discard(path: Path) -> None:
    """Remove a stored file and its now-empty folder."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def _owner_gone(lock_path: Path) -> bool:
    """Whether no live process holds ``lock_path`` (taking the lock, then dropping it)."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        return _try_lock(fd)
    finally:
        os.close(fd)


def sweep_incoming(root: Path, *, older_than: float = LOOSE_FILE_SECONDS) -> int:
    """Delete uploads that crashed processes left half-received; returns how many went.

    A process's folder goes as soon as no live process holds its lock; loose files (from
    before per-process folders) go once untouched for ``older_than`` seconds, as do
    folders whose lock file is missing.
    """
    incoming = root / INCOMING
    if not incoming.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for path in sorted(incoming.iterdir()):
        with contextlib.suppress(OSError):
            if path.name.endswith(LOCK_SUFFIX):
                folder = path.with_suffix("")
                if not folder.exists() and _owner_gone(path):
                    path.unlink()
                continue
            if path.is_dir():
                lock = path.with_name(path.name + LOCK_SUFFIX)
                gone = _owner_gone(lock) if lock.exists() else path.stat().st_mtime < cutoff
                if gone:
                    removed += sum(1 for p in path.rglob("*") if p.is_file())
                    shutil.rmtree(path, ignore_errors=True)
                    lock.unlink(missing_ok=True)
            elif path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed

"""Digests of a built task's files, to check that a build is reproducible."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Files that record the build machine rather than the spec (its speed: the scoring limits).
MACHINE_FILES = frozenset({"scoring_limits.json"})


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` but the machine-dependent ones."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and str(path.relative_to(root)) not in MACHINE_FILES
    }

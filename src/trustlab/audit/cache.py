"""The per-section cache of an output folder, which makes an audit resumable.

Each finished section is stored as ``<out>/.audit-cache/<section>-<key>.json``, where the key
hashes the model's weights, the data, the section's settings and the report's schema version.
Running the audit again (after a crash, with one more section, or with other thresholds, which
change no number) reads the finished sections and runs only the missing ones. Files are written
atomically, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from trustlab.audit.report import SCHEMA_VERSION, SectionResult

__all__ = ["CACHE_DIR", "SectionCache", "write_atomically"]

CACHE_DIR = ".audit-cache"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(name, 0o644)
        os.replace(name, path)
    except BaseException:
        if os.path.exists(name):
            os.unlink(name)
        raise


class SectionCache:
    """Finished sections of the audits written to one output folder."""

    def __init__(self, out_dir: Path) -> None:
        self.folder = out_dir / CACHE_DIR

    @staticmethod
    def key(*, model_digest: str, data_digest: str, section: str, settings: dict[str, Any]) -> str:
        """The hash that names a section's entry."""
        payload = json.dumps(
            {
                "schema": SCHEMA_VERSION,
                "model": model_digest,
                "data": data_digest,
                "section": section,
                "settings": settings,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def path(self, section: str, key: str) -> Path:
        return self.folder / f"{section}-{key}.json"

    def work_dir(self, section: str, key: str) -> Path:
        """A folder for the section's own resumable state (e.g. AutoAttack's)."""
        return self.folder / f"{section}-{key}.work"

    def load(self, section: str, key: str) -> SectionResult | None:
        """The cached result, or None (also for an unreadable entry, which is then redone)."""
        path = self.path(section, key)
        if not path.is_file():
            return None
        try:
            result = SectionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        result.cached = True
        return result

    def store(self, section: str, key: str, result: SectionResult) -> None:
        write_atomically(
            self.path(section, key), json.dumps(result.to_dict(), allow_nan=True, default=str)
        )

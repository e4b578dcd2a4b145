"""A test plug-in task kind: membership inference that misbehaves on request.

A submitted file whose first line is ``#stress <action>`` makes the kind act it out;
any other file is checked and scored as ordinary membership inference. Actions:

- ``spin-check`` / ``sleep-check``: the intake check burns CPU / sleeps until stopped;
- ``leak-check`` / ``crash-check``: the check fails with a message (or an unexpected error)
  that names server paths;
- ``spin-score`` / ``crash-score``: the file passes its check; scoring burns CPU until
  stopped / the scoring process dies.

Each finished scoring appends the submission's id to ``$TRUSTLAB_TEST_SCORE_LOG`` if set.
Install it over a built membership task by changing the spec's ``kind`` to
``stress-membership``: the artefacts are the same.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trustlab.core.errors import SubmissionError
from trustlab.tasks import register_kind
from trustlab.tasks.base import ScoreResult, TaskPaths
from trustlab.tasks.membership import MembershipInference
from trustlab.tasks.registry import TASK_KINDS
from trustlab.tasks.spec import TaskSpec

PREFIX = b"#stress "


def directive(text: str) -> bytes:
    """A file that asks for ``text`` (one of the actions above)."""
    return PREFIX + text.encode() + b"\n"


def _action(file: Path) -> str:
    with file.open("rb") as handle:
        first = handle.readline()
    return first[len(PREFIX) :].decode().strip() if first.startswith(PREFIX) else ""


def _spin() -> None:
    while True:  # until the CPU-time limit stops the process
        pass


class StressMembership(MembershipInference):
    name = "stress-membership"

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        action = _action(file)
        if action == "spin-check":
            _spin()
        if action == "sleep-check":
            time.sleep(3600)
        if action == "leak-check":
            raise SubmissionError(f"Cannot parse {file}: compare with {paths.root}/hidden/x.npz")
        if action == "crash-check":
            raise ValueError(f"unexpected state in {file.resolve()}")
        if action in ("spin-score", "crash-score"):
            return {"rows": 0}
        return super().validate(spec, paths=paths, file=file, fields=fields)

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        action = _action(file)
        if action == "spin-score":
            _spin()
        if action == "crash-score":
            os._exit(3)
        result = super().score(spec, paths=paths, file=file, fields=fields)
        log = os.environ.get("TRUSTLAB_TEST_SCORE_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(f"{file.parent.name}\n")
        return result


if StressMembership.name not in TASK_KINDS:
    register_kind(StressMembership)

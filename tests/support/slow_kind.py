"""A test plug-in task kind: membership inference whose scoring is slow and logged.

Each finished scoring appends a line to ``params.log`` (or ``$TRUSTLAB_TEST_SCORE_LOG``), so
tests can count how often a submission was scored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from trustlab.tasks import register_kind
from trustlab.tasks.base import ScoreResult, TaskPaths
from trustlab.tasks.membership import MembershipInference, MembershipParams
from trustlab.tasks.registry import TASK_KINDS
from trustlab.tasks.spec import TaskSpec


class SlowParams(MembershipParams):
    delay: float = 2.0


class SlowMembership(MembershipInference):
    name = "slow-membership"
    params_model = SlowParams

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        time.sleep(SlowParams.model_validate(spec.params).delay)
        result = super().score(spec, paths=paths, file=file, fields=fields)
        log = os.environ.get("TRUSTLAB_TEST_SCORE_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(f"{file.parent.name}\n")
        return result


if SlowMembership.name not in TASK_KINDS:
    register_kind(SlowMembership)

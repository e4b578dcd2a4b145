"""Building tasks on disk and opening built ones; entry points for the limited process."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trustlab.core.errors import ConfigurationError, TrustlabError
from trustlab.tasks.base import (
    ProgressFn,
    TaskKind,
    TaskPaths,
    write_manifest,
    write_scoring_limits,
)
from trustlab.tasks.registry import get_kind, load_plugins
from trustlab.tasks.spec import DEVICE_ENV, TaskSpec, parse_spec

MSG_NOT_BUILT = (
    "{path} is not a built task (no spec.yaml or manifest.json); build it with "
    "'trustlab task build SPEC.yaml'."
)


@dataclass(frozen=True)
class BuiltTask:
    """A task whose artefacts are on disk."""

    spec: TaskSpec
    kind: TaskKind
    paths: TaskPaths


#: A task's scoring jobs may use this many times the CPU time its sample submission took.
SCORING_FACTOR = 5.0
#: ... but never less than this many CPU seconds (process start, reading the files).
MIN_SCORING_CPU_SECONDS = 30


def _quiet(message: str) -> None:
    del message


def derive_scoring_limits(
    kind: TaskKind, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn
) -> dict[str, Any] | None:
    """Score the task's sample submission once and derive the limit of one scoring job.

    The limit is ``max(30, ceil(5 x the CPU seconds the sample took))`` (CPU time of this
    process, every thread counted, as the worker's limit counts it). This also checks that the
    sample scores as it is. A kind without a sample submission gets no limits of its own: the
    server's defaults apply.
    """
    samples = sorted(paths.public.glob("sample_submission.*"))
    if not samples:
        return None
    fields = {field.name: field.choices[0] for field in kind.form_fields_for(spec) if field.choices}
    progress("scoring the sample submission to derive the scoring limits")
    start = time.process_time()
    kind.score(spec, paths=paths, file=samples[0], fields=fields)
    used = time.process_time() - start
    return {
        "cpu_seconds": max(MIN_SCORING_CPU_SECONDS, math.ceil(SCORING_FACTOR * used)),
        "reference_cpu_seconds": round(used, 3),
        "factor": SCORING_FACTOR,
    }


def build_task(
    spec: TaskSpec, *, tasks_dir: str | Path, progress: ProgressFn | None = None
) -> BuiltTask:
    """Build ``spec`` into ``tasks_dir/<spec.id>``, replacing an earlier build atomically.

    The build happens in a temporary folder beside the target; the old build is only
    replaced once the new one is complete, so a failed build leaves the old one untouched.
    """
    progress = progress or _quiet
    kind = get_kind(spec.kind)
    tasks_dir = Path(tasks_dir)
    tasks_dir.mkdir(parents=True, exist_ok=True)
    final = tasks_dir / spec.id
    staging = Path(tempfile.mkdtemp(prefix=f".build-{spec.id}-", dir=tasks_dir))
    try:
        paths = TaskPaths(staging)
        paths.public.mkdir()
        paths.hidden.mkdir()
        paths.spec.write_text(spec.to_yaml(), encoding="utf-8")
        kind.build(spec, paths=paths, progress=progress)
        write_manifest(paths, spec)
        limits = derive_scoring_limits(kind, spec, paths=paths, progress=progress)
        if limits is not None:
            write_scoring_limits(paths, limits)
        # Artefacts are meant to be read by the server's user and by staff: rwxr-xr-x folders.
        for path in staging.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(staging, 0o755)  # noqa: S103
        old = None
        if final.exists():
            old = tasks_dir / f".old-{spec.id}-{os.getpid()}"
            os.replace(final, old)
        os.replace(staging, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuiltTask(spec=spec, kind=kind, paths=TaskPaths(final))


def open_task(path: str | Path) -> BuiltTask:
    """Open a built task folder."""
    paths = TaskPaths(Path(path))
    if not paths.spec.is_file() or not paths.manifest.is_file():
        raise ConfigurationError(MSG_NOT_BUILT.format(path=path))
    data = yaml.safe_load(paths.spec.read_text(encoding="utf-8"))
    spec = parse_spec(data, source=str(paths.spec))
    return BuiltTask(spec=spec, kind=get_kind(spec.kind), paths=paths)


def find_tasks(
    tasks_dir: str | Path, *, on_error: Callable[[Path, TrustlabError], None] | None = None
) -> list[BuiltTask]:
    """Every built task directly under ``tasks_dir``, sorted by id.

    A folder that fails to open raises, unless ``on_error`` is given: then it is reported
    there and skipped, so one broken task does not take the others down.
    """
    tasks_dir = Path(tasks_dir)
    if not tasks_dir.is_dir():
        return []
    found = []
    for path in sorted(tasks_dir.iterdir()):
        if not path.is_dir() or path.name.startswith(".") or not (path / "manifest.json").is_file():
            continue
        try:
            found.append(open_task(path))
        except TrustlabError as exc:
            if on_error is None:
                raise
            on_error(path, exc)
    return found


def validate_submission(
    task_dir: str, file: str, fields: Mapping[str, str], plugins: Sequence[str] = ()
) -> dict[str, Any]:
    """Validate a submitted file (run in a limited process by the server)."""
    load_plugins(plugins)
    task = open_task(task_dir)
    return task.kind.validate(task.spec, paths=task.paths, file=Path(file), fields=fields)


def score_submission(
    task_dir: str,
    file: str,
    fields: Mapping[str, str],
    plugins: Sequence[str] = (),
    device: str | None = None,
) -> dict[str, Any]:
    """Score an accepted file (run in a limited process by the workers).

    ``device`` (``cpu`` or ``cuda``) is the worker's choice for this job; it is handed to the
    kind as ``TRUSTLAB_DEVICE`` (see :func:`trustlab.tasks.spec.scoring_device`).
    """
    if device:
        os.environ[DEVICE_ENV] = device
    load_plugins(plugins)
    task = open_task(task_dir)
    result = task.kind.score(task.spec, paths=task.paths, file=Path(file), fields=fields)
    return result.to_json()

"""The base class of challenge kinds, and the layout of a built task on disk.

A task kind knows three things: how to **build** a task's artefacts from its spec (reproducibly
from the spec's seed), how to **validate** a submitted file at once (so a bad file is refused
before it is stored), and how to **score** an accepted file on the hidden public and private
parts. Validation and scoring run in a limited child process (:mod:`trustlab.core.sandbox`).

A built task is a folder::

    <task_id>/
      spec.yaml        the validated spec, canonical YAML
      manifest.json    name, size and SHA-256 of every public artefact
      public/          artefacts teams may download
      hidden/          answers, never served
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from trustlab.tasks.spec import TaskSpec

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class TaskPaths:
    """Where a built task's files live."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def hidden(self) -> Path:
        return self.root / "hidden"


@dataclass(frozen=True)
class FormField:
    """A form field a task's submissions carry beside the file (e.g. ``model_name``)."""

    name: str
    description: str
    choices: tuple[str, ...] = ()
    required: bool = True


@dataclass(frozen=True)
class ScoreResult:
    """Scores of one submission on the public and private parts of the hidden set.

    ``public_metrics`` and ``private_metrics`` map metric names to numbers (or ``[low, high]``
    confidence intervals); the scores are the task's primary metric on each part.
    """

    public_score: float
    private_score: float
    public_metrics: dict[str, Any] = field(default_factory=dict)
    private_metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("public_score", "private_score"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "public_score": float(self.public_score),
            "private_score": float(self.private_score),
            "public_metrics": self.public_metrics,
            "private_metrics": self.private_metrics,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoreResult:
        return cls(
            public_score=float(data["public_score"]),
            private_score=float(data["private_score"]),
            public_metrics=dict(data.get("public_metrics", {})),
            private_metrics=dict(data.get("private_metrics", {})),
            notes=list(data.get("notes", [])),
        )


class TaskKind(ABC):
    """A kind of challenge. Subclasses are registered with :func:`register_kind`.

    Class attributes
    ----------------
    name : str
        The ``kind`` written in task specs.
    params_model : type[BaseModel]
        The pydantic model of the spec's ``params``.
    higher_is_better : bool
        Direction of the primary metric (leaderboards sort by it).
    submission_format : str
        One line telling teams what to submit (shown in the task's description).
    form_fields : tuple[FormField, ...]
        Form fields submitted beside the file.
    """

    name: ClassVar[str]
    params_model: ClassVar[type[BaseModel]]
    higher_is_better: ClassVar[bool] = True
    submission_format: ClassVar[str] = ""
    form_fields: ClassVar[tuple[FormField, ...]] = ()

    @abstractmethod
    def metric_names(self, spec: TaskSpec) -> list[str]:
        """Names of every metric the kind reports for this spec; the first is the default."""

    def default_metric(self, spec: TaskSpec) -> str:
        return self.metric_names(spec)[0]

    def check_spec(self, spec: TaskSpec) -> list[str]:
        """Cross-field problems in a spec whose fields are each valid; empty when fine."""
        problems = []
        names = self.metric_names(spec)
        if spec.metric is not None and spec.metric not in names:
            problems.append(
                f"field 'metric': {spec.metric!r} is not a metric of kind {self.name!r}; "
                f"use one of {', '.join(names)}"
            )
        return problems

    def form_fields_for(self, spec: TaskSpec) -> tuple[FormField, ...]:
        """The form fields for this spec (a kind may fill ``choices`` from its params)."""
        return self.form_fields

    def rules_text(self, spec: TaskSpec) -> str:
        """How this spec scores a submission, in words, shown after the task's description.

        Empty by default; a kind whose params set the scoring rule (a bound, a penalty) says
        it here so that teams read the rule the server applies.
        """
        return ""

    @abstractmethod
    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        """Write the task's public artefacts and hidden answers under ``paths``.

        Must be reproducible: the same spec gives byte-identical files.
        """

    @abstractmethod
    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        """Check a submitted file; raise :class:`~trustlab.core.errors.SubmissionError`.

        Returns a small JSON summary of the file (e.g. its row count) stored with it.
        """

    @abstractmethod
    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        """Score a validated submission on the hidden public and private parts."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(paths: TaskPaths, spec: TaskSpec) -> dict[str, Any]:
    """Describe every public artefact (name, size, SHA-256) in ``manifest.json``."""
    artifacts = [
        {"name": f.name, "size": f.stat().st_size, "sha256": sha256_file(f)}
        for f in sorted(paths.public.iterdir())
        if f.is_file()
    ]
    manifest = {
        "task_id": spec.id,
        "kind": spec.kind,
        "spec_sha256": hashlib.sha256(spec.to_yaml().encode()).hexdigest(),
        "artifacts": artifacts,
    }
    paths.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(paths: TaskPaths) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(paths.manifest.read_text())
    return data

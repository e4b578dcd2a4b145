"""The base class of challenge kinds, and the layout of a built task on disk.

A task kind knows three things: how to **build** a task's artefacts from its spec (reproducibly
from the spec's seed), how to **validate** a submitted file at once (so a bad file is refused
before it is stored), and how to **score** an accepted file on the hidden public and private
parts. Validation and scoring run in a limited child process (:mod:`trustlab.core.sandbox`).

A kind whose tasks answer ``POST /api/v1/tasks/{task_id}/query`` also satisfies
:class:`SupportsQueries`: it opens a :class:`Victim` that checks batches against its
:class:`QueryRules` and returns an :class:`Answer`. The server relies only on this module's
contract, never on one kind's module.

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
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trustlab.core.errors import DataError
from trustlab.tasks.spec import TaskSpec, parse_duration

if TYPE_CHECKING:  # importing trustlab.tasks loads neither NumPy nor torch
    import numpy as np
    import torch

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
    def scoring_limits(self) -> Path:
        """The limits of one scoring job, derived when the task was built.

        Kept out of ``manifest.json``: they record the build machine's speed, while every
        other file of a build is byte-identical for the same spec.
        """
        return self.root / "scoring_limits.json"

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
    manifest: dict[str, Any] = {
        "task_id": spec.id,
        "kind": spec.kind,
        "spec_sha256": hashlib.sha256(spec.to_yaml().encode()).hexdigest(),
        "artifacts": artifacts,
    }
    paths.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def write_scoring_limits(paths: TaskPaths, limits: Mapping[str, Any]) -> None:
    """Record the limits of one scoring job in ``scoring_limits.json``."""
    paths.scoring_limits.write_text(json.dumps(dict(limits), indent=2, sort_keys=True) + "\n")


def read_manifest(paths: TaskPaths) -> dict[str, Any]:
    """The task's manifest, with its ``scoring_limits`` where the build derived them."""
    data: dict[str, Any] = json.loads(paths.manifest.read_text())
    if paths.scoring_limits.is_file():
        data["scoring_limits"] = json.loads(paths.scoring_limits.read_text())
    return data


# --------------------------------------------------------------------------------------------
# The query contract: what the server needs of a kind whose tasks answer queries

MSG_BATCH_DTYPE = (
    "The batch has dtype {dtype}; send real numbers (float32, float64 or integers), not {what}."
)
MSG_BATCH_SHAPE = (
    "The batch has shape {shape}; this task takes shape (n, {expected}): one row per input, "
    "each of shape {expected_tuple}."
)
MSG_BATCH_EMPTY = "The batch has no rows; send at least one input."
MSG_BATCH_TOO_MANY = (
    "The batch has {n} rows; this task answers at most {max_batch} rows per request. Split it "
    "into smaller batches."
)
MSG_BATCH_NON_FINITE = "Row {row} holds {what}; every input value must be finite."
MSG_BATCH_RANGE = (
    "Row {row} holds the value {value:g}, outside this task's input range [{low:g}, {high:g}]; "
    "clip the inputs to that range."
)


class RateLimit(BaseModel):
    """At most ``requests`` requests and ``queries`` rows per ``window`` (fixed windows).

    ``None`` means no limit; a spec may write ``window`` as a duration such as ``"1m"``.
    """

    model_config = ConfigDict(extra="forbid")

    requests: int | None = Field(default=None, ge=1)
    queries: int | None = Field(default=None, ge=1)
    window: float = Field(default=60.0, gt=0.0)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> float:
        return parse_duration(value)


@dataclass(frozen=True)
class QueryRules:
    """What a task's query endpoint accepts, from the spec and the built task.

    ``input_shape`` is the shape of one input row and ``input_range`` the closed range of its
    values (None: any finite value); ``output`` is the answer's form (for model extraction
    ``labels``, ``top-k``, ``probabilities`` or ``embeddings``) and ``output_dim`` the width of
    one answer row; ``query_budget`` counts rows per team in all, ``max_batch`` rows per
    request.
    """

    input_shape: tuple[int, ...]
    input_range: tuple[float, float] | None
    output: str
    output_dim: int
    query_budget: int
    max_batch: int
    rate_limit: RateLimit

    @property
    def max_rows(self) -> int:
        """The most rows one request may carry (the batch limit and the window's row limit)."""
        limit = self.rate_limit.queries
        return self.max_batch if limit is None else min(self.max_batch, limit)

    @property
    def max_body_bytes(self) -> int:
        """A generous cap on a request body: a full batch as JSON text, plus slack."""
        features = math.prod(self.input_shape)
        return 65_536 + self.max_rows * features * 32

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """Check a batch of inputs and return it as C-contiguous float32.

        Parameters
        ----------
        batch : numpy.ndarray, shape (n, *input_shape)
            Real numbers (integers or floats), ``1 <= n <= max_rows``.

        Raises
        ------
        DataError
            If the batch is not real numbers, has the wrong shape, too many rows, or a value
            that is not finite or lies outside the input range (the message names the row).

        Examples
        --------
        >>> import numpy as np
        >>> rules = QueryRules(input_shape=(2,), input_range=(0.0, 1.0), output="labels",
        ...                    output_dim=3, query_budget=10, max_batch=4, rate_limit=RateLimit())
        >>> rules.check_batch(np.array([[0, 1], [1, 1]])).dtype
        dtype('float32')
        >>> rules.check_batch(np.array([[0.5, 2.0]]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        trustlab.core.errors.DataError: Row 0 holds the value 2, outside ... [0, 1]; ...
        """
        import numpy as np

        if batch.dtype == np.bool_ or not (
            np.issubdtype(batch.dtype, np.integer) or np.issubdtype(batch.dtype, np.floating)
        ):
            what = "booleans" if batch.dtype == np.bool_ else f"values of kind {batch.dtype.kind!r}"
            raise DataError(MSG_BATCH_DTYPE.format(dtype=batch.dtype, what=what))
        expected = ", ".join(str(d) for d in self.input_shape)
        if batch.ndim != 1 + len(self.input_shape) or tuple(batch.shape[1:]) != self.input_shape:
            raise DataError(
                MSG_BATCH_SHAPE.format(
                    shape=tuple(batch.shape), expected=expected, expected_tuple=self.input_shape
                )
            )
        n = batch.shape[0]
        if n == 0:
            raise DataError(MSG_BATCH_EMPTY)
        if n > self.max_rows:
            raise DataError(MSG_BATCH_TOO_MANY.format(n=n, max_batch=self.max_rows))
        with np.errstate(over="ignore"):
            values = np.ascontiguousarray(batch, dtype=np.float32)
        flat = values.reshape(n, -1)
        # A float64 value beyond float32's range becomes an infinity here, and is refused.
        finite = np.isfinite(flat).all(axis=1)
        if not finite.all():
            row = int(np.argmin(finite))
            what = "NaN" if np.isnan(flat[row]).any() else "an infinity"
            raise DataError(MSG_BATCH_NON_FINITE.format(row=row, what=what))
        if self.input_range is not None:
            low, high = self.input_range
            inside = ((flat >= low) & (flat <= high)).all(axis=1)
            if not inside.all():
                row = int(np.argmin(inside))
                bad = flat[row][(flat[row] < low) | (flat[row] > high)][0]
                raise DataError(MSG_BATCH_RANGE.format(row=row, value=bad, low=low, high=high))
        return values

    def to_json(self) -> dict[str, Any]:
        """The rules as the query-status endpoint shows them."""
        return {
            "input_shape": list(self.input_shape),
            "input_dtype": "float32",
            "input_range": list(self.input_range) if self.input_range else None,
            "output": self.output,
            "output_dim": self.output_dim,
            "query_budget": self.query_budget,
            "max_batch": self.max_rows,
            "rate_limit": self.rate_limit.model_dump(),
        }


@dataclass(frozen=True)
class Answer:
    """The victim's answer to one batch.

    ``outputs`` is what the team gets, ``(n,)`` int64 labels or ``(n, output_dim)`` float32;
    ``labels`` holds the undefended victim's classes (for a detector), None for an encoder.
    """

    outputs: np.ndarray
    labels: np.ndarray | None


@dataclass(frozen=True)
class Verdict:
    """What a detector concluded about a team's query stream after one batch."""

    flagged: bool
    statistic: float | None
    n_queries: int
    reason: str


class DetectorReport(Protocol):
    """What a detector returns for one observed batch (fields as in :class:`Verdict`)."""

    @property
    def flagged(self) -> bool: ...

    @property
    def statistic(self) -> float | None: ...

    @property
    def n_queries(self) -> int: ...

    @property
    def reason(self) -> str: ...


class Detector(Protocol):
    """A detector that watches each team's query stream, with per-team state as JSON data."""

    def observe(
        self, *, inputs: torch.Tensor, client_id: str, labels: torch.Tensor
    ) -> DetectorReport: ...

    def state_dict(self, client_id: str) -> dict[str, Any]: ...

    def load_state_dict(self, client_id: str, state: dict[str, Any]) -> None: ...


class Victim(Protocol):
    """A built task's victim as the query endpoint serves it.

    Implementations are trusted (built by the staff) and thread-safe: the server calls
    :meth:`answer` from several threads at once.
    """

    @property
    def rules(self) -> QueryRules:
        """What the endpoint accepts."""

    @property
    def detector_action(self) -> str | None:
        """``flag``, ``refuse`` (a flagged team is refused), or None without a detector."""

    def answer(self, x: np.ndarray, *, client_id: str) -> Answer:
        """The answer to a batch checked with :meth:`QueryRules.check_batch`."""

    def new_detector(self) -> Detector | None:
        """A fresh detector (its state is loaded per team by the caller), or None."""


@runtime_checkable
class SupportsQueries(Protocol):
    """A task kind whose tasks answer ``POST /api/v1/tasks/{task_id}/query``."""

    def open_victim(self, spec: TaskSpec, *, paths: TaskPaths) -> Victim:
        """The victim of a built task, loaded once per task and server process."""

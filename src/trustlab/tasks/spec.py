"""Task specifications: the YAML files that describe a challenge.

A spec names the task kind, the rules of submission (deadline, cooldowns, limits, size) and
the kind's own parameters. Every field is validated; an error names the field and says what to
write instead.

Example
-------
.. code-block:: yaml

    id: mia-digits
    kind: membership-inference
    title: Membership inference on digits
    deadline: 2027-01-31T23:59:00Z
    public_fraction: 0.3
    metric: tpr@0.05
    cooldown: {accepted: 60s, failed: 10s}
    limits: {daily: 20, total: 200}
    max_file_size: 1MB
    dataset: digits
    seed: 0
    params: {...}          # the kind's own parameters

A course task may add phases, final choices, the Ladder and a scoring device:

.. code-block:: yaml

    phases:
      - {name: development, start: 2027-01-10T00:00Z, end: 2027-01-28T23:59Z,
         limits: {daily: 5}, split: public}
      - {name: final, start: 2027-01-29T00:00Z, end: 2027-01-31T23:59Z,
         limits: {daily: 2, total: 2}, split: private}
    final_selections: 2    # submissions a team may mark as final (Kaggle's rule otherwise)
    ladder: {step: 0.01}   # Blum & Hardt's Ladder on the public score
    device: cuda           # scored only by workers with a GPU
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from trustlab.core.errors import ConfigurationError

MSG_SPEC_INVALID = "Task spec {source} is invalid:\n{problems}"
MSG_SPEC_UNREADABLE = "Task spec {source} cannot be read as YAML: {error}"
MSG_SPEC_NOT_MAPPING = "Task spec {source} must be a YAML mapping of fields (id, kind, title, ...)."
MSG_DURATION = (
    "must be a number of seconds or a duration like '30s', '10m', '2h', '1d'; got {value!r}"
)
MSG_SIZE = "must be a number of bytes or a size like '500KB', '10MB', '1GB'; got {value!r}"
MSG_PHASE_ORDER = (
    "phase {name!r} must end after it starts (start {start}, end {end}); fix its dates"
)
MSG_PHASE_OVERLAP = (
    "phase {name!r} starts at {start}, before the phase before it ({previous!r}) ends at "
    "{end}; list the phases in order, without overlap"
)
MSG_PHASE_NAMES = "phase names must be unique; {name!r} appears twice"
MSG_PHASE_DEADLINE = (
    "the deadline {deadline} is before the last phase's end {end}; leave 'deadline' out (it "
    "defaults to the last phase's end) or move it"
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``"30s"``, ``"10m"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError(MSG_DURATION.format(value=value))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(MSG_DURATION.format(value=value))
        seconds = float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "s").lower()]
    if seconds < 0:
        raise ValueError(MSG_DURATION.format(value=value))
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from ``1048576``, ``"500KB"``, ``"10MB"`` or ``"1GiB"``."""
    if isinstance(value, bool):
        raise ValueError(MSG_SIZE.format(value=value))
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(MSG_SIZE.format(value=value))
        size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(MSG_SIZE.format(value=value))
    return size


class Cooldown(BaseModel):
    """Seconds a team waits after an accepted submission, and after one whose scoring failed."""

    model_config = ConfigDict(extra="forbid")

    accepted: float = 60.0
    failed: float = 10.0

    @field_validator("accepted", "failed", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class SubmissionLimits(BaseModel):
    """How many submissions a team may make per UTC day and in total (``null``: no limit).

    Submissions rejected at intake never count; submissions whose scoring failed do not count
    either (they only start the shorter ``failed`` cooldown).
    """

    model_config = ConfigDict(extra="forbid")

    daily: int | None = Field(default=10, ge=1)
    total: int | None = Field(default=None, ge=1)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc) if value is not None else None


class Phase(BaseModel):
    """One phase of a task (e.g. ``development``, then ``final``).

    A submission belongs to the phase open when it arrives; outside every phase the task
    accepts none. ``limits`` and ``cooldown`` replace the task's own during the phase, and the
    limits count only the phase's submissions. ``split`` says which part of the hidden set the
    phase reveals while it runs: ``public`` shows each submission's public score at once;
    ``private`` (a blind final phase) shows no score of the phase's submissions until the
    phase ends, and the leaderboard stays as the earlier phases left it.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    start: datetime | None = None
    end: datetime
    description: str = ""
    limits: SubmissionLimits | None = None
    cooldown: Cooldown | None = None
    split: Literal["public", "private"] = "public"

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @model_validator(mode="after")
    def _ordered(self) -> Phase:
        if self.start is not None and self.start >= self.end:
            raise ValueError(MSG_PHASE_ORDER.format(name=self.name, start=self.start, end=self.end))
        return self

    def is_open(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and now < self.end


class Ladder(BaseModel):
    """Blum & Hardt's Ladder (ICML 2015) on the public score: a team's public score is only
    updated when a submission beats the team's best by more than ``step``, and is then shown
    rounded to a multiple of ``step``."""

    model_config = ConfigDict(extra="forbid")

    step: float = Field(gt=0.0, le=1.0)


#: Course fields left out of the canonical YAML while they keep their defaults, so that the
#: spec of a task without them reads (and digests) as it always did.
COURSE_FIELDS = {"phases": [], "final_selections": 2, "ladder": None, "device": None}


class TaskSpec(BaseModel):
    """A validated task specification. Construct it with :func:`load_spec` or :func:`parse_spec`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
    kind: str
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    deadline: datetime | None = None
    public_fraction: float = Field(default=0.3, gt=0.0, lt=1.0)
    metric: str | None = None
    cooldown: Cooldown = Field(default_factory=Cooldown)
    limits: SubmissionLimits = Field(default_factory=SubmissionLimits)
    max_file_size: int = 10 * 1000**2
    dataset: str
    seed: int = Field(default=0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    phases: list[Phase] = Field(default_factory=list)
    final_selections: int = Field(default=2, ge=1, le=20)
    ladder: Ladder | None = None
    device: Literal["cpu", "cuda"] | None = None

    @field_validator("max_file_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)

    @field_validator("deadline")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @model_validator(mode="after")
    def _phases(self) -> TaskSpec:
        seen: set[str] = set()
        for before, phase in zip([None, *self.phases], self.phases, strict=False):
            if phase.name in seen:
                raise ValueError(MSG_PHASE_NAMES.format(name=phase.name))
            seen.add(phase.name)
            if before is not None and (phase.start is None or phase.start < before.end):
                raise ValueError(
                    MSG_PHASE_OVERLAP.format(
                        name=phase.name, start=phase.start, previous=before.name, end=before.end
                    )
                )
        if self.phases:
            last = self.phases[-1].end
            if self.deadline is None:
                self.deadline = last
            elif self.deadline < last:
                raise ValueError(MSG_PHASE_DEADLINE.format(deadline=self.deadline, end=last))
        return self

    def phase_at(self, now: datetime) -> Phase | None:
        """The phase open at ``now`` (None between phases, or for a task without phases)."""
        return next((p for p in self.phases if p.is_open(now)), None)

    def to_yaml(self) -> str:
        """The spec as canonical YAML (stable key order; the same spec gives the same text)."""
        data = self.model_dump(mode="json")
        for name, default in COURSE_FIELDS.items():
            if data.get(name) == default:
                data.pop(name, None)
        return yaml.safe_dump(data, sort_keys=True, allow_unicode=True)


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        elif err["type"] == "missing":
            message = "required field is missing"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"  - field '{where}': {message}")
    return "\n".join(lines)


def parse_spec(data: Any, *, source: str = "<spec>") -> TaskSpec:
    """Validate a spec given as a mapping; the kind and its ``params`` are checked too."""
    from trustlab.tasks.registry import get_kind

    if not isinstance(data, dict):
        raise ConfigurationError(MSG_SPEC_NOT_MAPPING.format(source=source))
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(
            MSG_SPEC_INVALID.format(source=source, problems=_format_errors(exc))
        ) from None
    try:
        kind = get_kind(spec.kind)
    except KeyError as exc:
        raise ConfigurationError(
            MSG_SPEC_INVALID.format(source=source, problems=f"  - field 'kind': {exc}")
        ) from None
    try:
        params = kind.params_model.model_validate(spec.params)
    except ValidationError as exc:
        problems = _format_errors(exc).replace("field '", "field 'params.")
        raise ConfigurationError(
            MSG_SPEC_INVALID.format(source=source, problems=problems)
        ) from None
    spec = spec.model_copy(update={"params": params.model_dump(mode="json")})
    cross_field = kind.check_spec(spec)
    if cross_field:
        listed = "\n".join(f"  - {p}" for p in cross_field)
        raise ConfigurationError(MSG_SPEC_INVALID.format(source=source, problems=listed))
    if spec.metric is None:
        spec = spec.model_copy(update={"metric": kind.default_metric(spec)})
    return spec


def load_spec(path: str | Path) -> TaskSpec:
    """Read and validate a task spec from a YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"Task spec {path} does not exist; check the path.") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigurationError(MSG_SPEC_UNREADABLE.format(source=path, error=exc)) from None
    return parse_spec(data, source=str(path))


#: The environment variable that carries a scoring job's device into the scoring process.
DEVICE_ENV = "TRUSTLAB_DEVICE"


def scoring_device(spec: TaskSpec) -> str:
    """The torch device a kind should score on: the spec's ``device``, else the worker's
    (``TRUSTLAB_DEVICE``, set by the worker for each job), else ``cpu``."""
    if spec.device:
        return spec.device
    named = os.environ.get(DEVICE_ENV, "cpu").strip().lower()
    return named if named in ("cpu", "cuda") else "cpu"


P = TypeVar("P", bound=BaseModel)


def parse_params(spec: TaskSpec, model: type[BaseModel], *, as_type: type[P]) -> P:
    """The spec's ``params`` validated by the kind's parameter model.

    ``model`` is the kind's ``params_model`` (a subclass of a kind may extend it); ``as_type``
    is the class the caller relies on, which ``model`` must derive from.

    Raises
    ------
    pydantic.ValidationError
        If a parameter is missing, unknown or out of range (``check_spec`` reports it first).
    """
    params = model.model_validate(spec.params)
    if not isinstance(params, as_type):
        raise TypeError(f"{model.__name__} does not derive from {as_type.__name__}.")
    return params

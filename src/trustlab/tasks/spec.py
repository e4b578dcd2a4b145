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
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trustlab.core.errors import ConfigurationError

MSG_SPEC_INVALID = "Task spec {source} is invalid:\n{problems}"
MSG_SPEC_UNREADABLE = "Task spec {source} cannot be read as YAML: {error}"
MSG_SPEC_NOT_MAPPING = "Task spec {source} must be a YAML mapping of fields (id, kind, title, ...)."
MSG_DURATION = (
    "must be a number of seconds or a duration like '30s', '10m', '2h', '1d'; got {value!r}"
)
MSG_SIZE = "must be a number of bytes or a size like '500KB', '10MB', '1GB'; got {value!r}"

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

    @field_validator("max_file_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)

    @field_validator("deadline")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc) if value is not None else None

    def to_yaml(self) -> str:
        """The spec as canonical YAML (stable key order; the same spec gives the same text)."""
        data = self.model_dump(mode="json")
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

"""Typed records of the arena's HTTP API, shared by the server and :mod:`trustlab.client`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field


class SubmissionStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SCORED = "scored"
    FAILED = "failed"


class FormFieldInfo(BaseModel):
    name: str
    description: str
    choices: list[str] = Field(default_factory=list)
    required: bool = True


class SubmissionRules(BaseModel):
    format: str
    max_file_size: int
    cooldown_accepted_seconds: float
    cooldown_failed_seconds: float
    daily_limit: int | None
    total_limit: int | None
    form_fields: list[FormFieldInfo] = Field(default_factory=list)


class Artifact(BaseModel):
    name: str
    size: int
    sha256: str


class TaskSummary(BaseModel):
    task_id: str
    kind: str
    title: str
    deadline: datetime | None
    metric: str
    higher_is_better: bool
    public_fraction: float
    submission_rules: SubmissionRules


class TaskDetail(TaskSummary):
    description: str
    metrics: list[str]
    artifacts: list[Artifact]


class SubmissionAccepted(BaseModel):
    submission_id: str
    status: SubmissionStatus


class SubmissionInfo(BaseModel):
    submission_id: str
    task_id: str
    team: str
    status: SubmissionStatus
    created_at: datetime
    finished_at: datetime | None = None
    public_score: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    private_score: float | None = None
    private_metrics: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)
    error: str | None = None


class LeaderboardEntry(BaseModel):
    rank: int
    team: str
    public_score: float
    private_score: float | None = None
    submissions: int
    submitted_at: datetime


class Leaderboard(BaseModel):
    task_id: str
    title: str
    metric: str
    higher_is_better: bool
    deadline: datetime | None
    final: bool
    entries: list[LeaderboardEntry]


class QueryAnswer(BaseModel):
    """The JSON answer of ``POST /api/v1/tasks/{task_id}/query``."""

    task_id: str
    output: str
    n: int
    outputs: list[Any]
    queries_used: int
    queries_remaining: int


class RateLimitInfo(BaseModel):
    requests: int | None = None
    queries: int | None = None
    window: float


class QueryStatus(BaseModel):
    """``GET /api/v1/tasks/{task_id}/query``: the query format and the team's budget."""

    task_id: str
    input_shape: list[int]
    input_dtype: str
    input_range: list[float] | None
    output: str
    output_dim: int
    max_batch: int
    rate_limit: RateLimitInfo
    query_budget: int
    queries_used: int
    queries_remaining: int

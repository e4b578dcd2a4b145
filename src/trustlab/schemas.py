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


class PhaseInfo(BaseModel):
    """One phase of a task: its dates, its rules and the part of the hidden set it reveals."""

    name: str
    start: datetime | None
    end: datetime
    split: str
    description: str = ""
    daily_limit: int | None = None
    total_limit: int | None = None


class TaskSummary(BaseModel):
    task_id: str
    kind: str
    title: str
    deadline: datetime | None
    metric: str
    higher_is_better: bool
    public_fraction: float
    submission_rules: SubmissionRules
    phase: str | None = None
    phases: list[PhaseInfo] = Field(default_factory=list)
    final_selections: int = 2
    ladder_step: float | None = None


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
    phase: str | None = None
    selected: bool = False
    score_version: int = 0


class LeaderboardEntry(BaseModel):
    rank: int
    team: str
    public_score: float
    private_score: float | None = None
    submissions: int
    submitted_at: datetime
    public_interval: list[float] | None = None
    private_interval: list[float] | None = None
    tied: bool = False
    selected: bool = False


class Leaderboard(BaseModel):
    task_id: str
    title: str
    metric: str
    higher_is_better: bool
    deadline: datetime | None
    final: bool
    entries: list[LeaderboardEntry]
    phase: str | None = None
    selection_rule: str = ""
    ladder_step: float | None = None


class TaskLimits(BaseModel):
    """A team's standing with one task: what it has used, what is left, when it may submit."""

    task_id: str
    title: str
    phase: str | None = None
    deadline: datetime | None = None
    closed: bool = False
    submissions: int = 0
    daily_used: int = 0
    daily_limit: int | None = None
    total_used: int = 0
    total_limit: int | None = None
    next_submission_at: datetime | None = None
    blocked: str | None = None
    selected: int = 0
    final_selections: int = 2
    queries_used: int | None = None
    query_budget: int | None = None


class TeamStatus(BaseModel):
    """``GET /api/v1/team/submissions``: the team, its members, limits and submissions."""

    team: str
    members: list[str]
    tasks: list[TaskLimits]
    submissions: list[SubmissionInfo]


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

"""Challenge kinds: how a task's artefacts are built and how submissions are scored.

The server and the CLI import this package and :mod:`trustlab.tasks.base` (the contract every
kind fulfils, including the query contract), never one kind's module; the built-in kinds
register themselves on first use of the registry.
"""

from trustlab.tasks.base import (
    Answer,
    FormField,
    QueryRules,
    RateLimit,
    ScoreResult,
    SupportsQueries,
    TaskKind,
    TaskPaths,
    Verdict,
    Victim,
)
from trustlab.tasks.build import (
    BuiltTask,
    build_task,
    find_tasks,
    open_task,
    score_submission,
    validate_submission,
)
from trustlab.tasks.registry import TASK_KINDS, get_kind, list_kinds, load_plugins, register_kind
from trustlab.tasks.spec import TaskSpec, load_spec, parse_spec

__all__ = [
    "TASK_KINDS",
    "Answer",
    "BuiltTask",
    "FormField",
    "QueryRules",
    "RateLimit",
    "ScoreResult",
    "SupportsQueries",
    "TaskKind",
    "TaskPaths",
    "TaskSpec",
    "Verdict",
    "Victim",
    "build_task",
    "find_tasks",
    "get_kind",
    "list_kinds",
    "load_plugins",
    "load_spec",
    "open_task",
    "parse_spec",
    "register_kind",
    "score_submission",
    "validate_submission",
]

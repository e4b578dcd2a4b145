"""Challenge kinds: how a task's artefacts are built and how submissions are scored."""

from trustlab.tasks.base import FormField, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.build import BuiltTask, build_task, find_tasks, open_task
from trustlab.tasks.registry import TASK_KINDS, get_kind, list_kinds, load_plugins, register_kind
from trustlab.tasks.spec import TaskSpec, load_spec, parse_spec

__all__ = [
    "TASK_KINDS",
    "BuiltTask",
    "FormField",
    "ScoreResult",
    "TaskKind",
    "TaskPaths",
    "TaskSpec",
    "build_task",
    "find_tasks",
    "get_kind",
    "list_kinds",
    "load_plugins",
    "load_spec",
    "open_task",
    "parse_spec",
    "register_kind",
]

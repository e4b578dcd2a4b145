"""Scoring devices: which worker may score which task, and the Celery queue a job goes to.

A task whose spec says ``device: cuda`` is GPU-only: a worker without a GPU never claims its
jobs (and refuses one handed to it, giving it back untouched), and with Celery its jobs are
published to ``gpu_queue``, which GPU workers consume. Every other task is scored on the
worker's own device (``TRUSTLAB_DEVICE``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trustlab.core.errors import ConfigurationError
from trustlab.server.models import Task
from trustlab.server.settings import Settings

MSG_NO_GPU = (
    "TRUSTLAB_DEVICE=cuda, but this machine has no usable CUDA GPU (torch.cuda.is_available() "
    "is False); start this worker with TRUSTLAB_DEVICE=cpu or auto, or on a machine with a GPU."
)
MSG_REFUSED = (
    "worker {worker} has no GPU and refuses submission {submission} of GPU-only task {task}; "
    "it goes back to the queue for a GPU worker (TRUSTLAB_DEVICE=cuda)"
)


def has_gpu() -> bool:
    """Whether PyTorch sees a CUDA device here."""
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(setting: str) -> str:
    """The device a worker scores on: ``cpu`` or ``cuda`` (``auto`` picks a GPU if any)."""
    if setting == "cpu":
        return "cpu"
    if has_gpu():
        return "cuda"
    if setting == "cuda":
        raise ConfigurationError(MSG_NO_GPU)
    return "cpu"


def is_gpu_only(spec: dict[str, Any] | None) -> bool:
    return bool(spec) and (spec or {}).get("device") == "cuda"


def gpu_only_tasks(session: Session) -> list[str]:
    """The ids of the GPU-only tasks (from the task rows, which workers on every machine read)."""
    rows = session.execute(select(Task.id, Task.spec)).all()
    return sorted(task_id for task_id, spec in rows if is_gpu_only(spec))


def queue_for(settings: Settings, spec: dict[str, Any] | None) -> str:
    """The Celery queue of a job of a task with this spec."""
    return settings.gpu_queue if is_gpu_only(spec) else settings.celery_queue


def job_device(spec: dict[str, Any] | None, worker_device: str) -> str:
    """The device a job is scored on: the task's own, else the worker's."""
    own = (spec or {}).get("device")
    return str(own) if own else worker_device

"""``trustlab submit``, ``download``, ``submissions``, ``select`` and ``unselect``: the
team's side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trustlab.cli._common import FieldOpt, console, out, parse_fields
from trustlab.client import ArenaClient
from trustlab.schemas import SubmissionStatus

UrlOpt = Annotated[str, typer.Option("--url", envvar="TRUSTLAB_URL", help="The arena's address.")]
KeyOpt = Annotated[
    str, typer.Option("--key", envvar="TRUSTLAB_API_KEY", help="Your team's API key.")
]


def submit(
    task_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    url: UrlOpt = "http://127.0.0.1:8000",
    key: KeyOpt = "",
    field: FieldOpt = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the score.")] = True,
) -> None:
    """Submit a file to a task; prints the submission id, and the score with --wait."""
    fields = parse_fields(field)
    with ArenaClient(url, api_key=key or None) as client:
        receipt = client.submit(task_id, file, fields=fields)
        console.print(f"accepted: submission {receipt.submission_id} is queued")
        if not wait:
            out.print(receipt.submission_id, highlight=False)
            return
        with console.status("waiting for the score"):
            info = client.wait(receipt.submission_id)
    if info.status is SubmissionStatus.FAILED:
        console.print(f"[red]failed[/]: {info.error}")
        raise typer.Exit(1)
    console.print(f"[green]scored[/]: public score {info.public_score:.4f}")
    for name, value in info.metrics.items():
        console.print(f"  {name}: {value}")
    out.print(receipt.submission_id, highlight=False)


def download(
    task_id: str,
    dest: Annotated[Path, typer.Option("--dest", help="Folder to download into.")] = Path("."),
    url: UrlOpt = "http://127.0.0.1:8000",
    key: KeyOpt = "",
) -> None:
    """Download every artefact of a task."""
    with ArenaClient(url, api_key=key or None) as client:
        for path in client.download_all(task_id, dest):
            out.print(str(path), highlight=False, markup=False, soft_wrap=True)


def submissions(
    task_id: Annotated[
        str | None, typer.Option("--task", help="Only this task's submissions.")
    ] = None,
    url: UrlOpt = "http://127.0.0.1:8000",
    key: KeyOpt = "",
) -> None:
    """List your team's submissions, newest first: one line each with the id, the task, the
    time, the status, the public score and the final mark (then the error, if any)."""
    with ArenaClient(url, api_key=key or None) as client:
        rows = client.submissions(task_id)
    if not rows:
        console.print("no submissions yet")
    for info in rows:
        score = "-" if info.public_score is None else f"{info.public_score:.4f}"
        parts = [
            info.submission_id,
            info.task_id,
            info.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            info.status.value,
            score,
            "final" if info.selected else "-",
        ]
        if info.error:
            parts.append(info.error)
        out.print("  ".join(parts), highlight=False, markup=False, soft_wrap=True)


def select(submission_id: str, url: UrlOpt = "http://127.0.0.1:8000", key: KeyOpt = "") -> None:
    """Mark a submission as final: after the deadline the private leaderboard ranks your team
    by the best of its selected submissions (by its best public one if none is selected)."""
    with ArenaClient(url, api_key=key or None) as client:
        info = client.select(submission_id)
    console.print(f"submission {info.submission_id} of {info.task_id} is marked as final")


def unselect(submission_id: str, url: UrlOpt = "http://127.0.0.1:8000", key: KeyOpt = "") -> None:
    """Remove a submission's final mark."""
    with ArenaClient(url, api_key=key or None) as client:
        info = client.unselect(submission_id)
    console.print(f"submission {info.submission_id} of {info.task_id} is no longer final")

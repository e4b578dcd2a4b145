"""``trustlab submit`` and ``trustlab download``: the team's side."""

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

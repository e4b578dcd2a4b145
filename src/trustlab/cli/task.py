"""``trustlab task``: build tasks and check files against them locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trustlab.cli._common import DataDirOpt, FieldOpt, console, out, parse_fields, settings_from
from trustlab.tasks import build_task, find_tasks, list_kinds, load_spec, open_task

app = typer.Typer(help="Build challenge tasks and check submissions locally.", no_args_is_help=True)


def build_with_progress(spec_path: Path, tasks_dir: Path) -> Path:
    spec = load_spec(spec_path)
    with console.status(f"building {spec.id} ({spec.kind})") as status:

        def progress(message: str) -> None:
            status.update(f"building {spec.id}: {message}")

        built = build_task(spec, tasks_dir=tasks_dir, progress=progress)
    return built.paths.root


@app.command("build")
def build(
    spec: Annotated[Path, typer.Argument(help="The task's YAML spec.")],
    data_dir: DataDirOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder to build into (default: the data folder's tasks/)."),
    ] = None,
) -> None:
    """Build a task's artefacts reproducibly from its spec (same spec, identical files)."""
    tasks_dir = out_dir or settings_from(data_dir).tasks_dir
    root = build_with_progress(spec, tasks_dir)
    manifest = json.loads((root / "manifest.json").read_text())
    table = Table("artefact", "bytes", "sha256")
    for artifact in manifest["artifacts"]:
        table.add_row(artifact["name"], str(artifact["size"]), artifact["sha256"][:16])
    console.print(table)
    out.print(str(root), highlight=False, markup=False, soft_wrap=True)


@app.command("list")
def list_(data_dir: DataDirOpt = None) -> None:
    """List the built tasks in the data folder, and the task kinds available."""
    table = Table("task", "kind", "title", "deadline")
    for task in find_tasks(settings_from(data_dir).tasks_dir):
        deadline = task.spec.deadline.isoformat() if task.spec.deadline else "-"
        table.add_row(task.spec.id, task.spec.kind, task.spec.title, deadline)
    out.print(table)
    console.print("Task kinds: " + ", ".join(list_kinds()))


@app.command("validate")
def validate(
    task_dir: Annotated[Path, typer.Argument(help="A built task's folder.")],
    file: Annotated[Path, typer.Argument(help="The file to check.")],
    field: FieldOpt = None,
) -> None:
    """Check a submission file exactly as the server's intake does."""
    task = open_task(task_dir)
    fields = parse_fields(field)
    summary = task.kind.validate(task.spec, paths=task.paths, file=file, fields=fields)
    console.print(f"[green]valid[/] {json.dumps(summary)}")


@app.command("score")
def score(
    task_dir: Annotated[Path, typer.Argument(help="A built task's folder (with hidden/).")],
    file: Annotated[Path, typer.Argument(help="The file to score.")],
    field: FieldOpt = None,
) -> None:
    """Score a file with the server's own scorer (needs the task's hidden answers)."""
    task = open_task(task_dir)
    fields = parse_fields(field)
    task.kind.validate(task.spec, paths=task.paths, file=file, fields=fields)
    result = task.kind.score(task.spec, paths=task.paths, file=file, fields=fields)
    out.print_json(json.dumps(result.to_json()))

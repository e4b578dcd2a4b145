"""``trustlab task``: build tasks and check files against them locally."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from trustlab.cli._common import DataDirOpt, FieldOpt, console, out, parse_fields, settings_from
from trustlab.core.errors import ConfigurationError
from trustlab.tasks import (
    build_task,
    find_tasks,
    list_kinds,
    load_plugins,
    load_spec,
    open_task,
    parse_spec,
)

app = typer.Typer(help="Build challenge tasks and check submissions locally.")


@app.callback()
def _plugins() -> None:
    """Register the plug-in task kinds named in TRUSTLAB_PLUGINS before any command runs."""
    load_plugins(settings_from().plugins)


@contextmanager
def _working_folder(folder: Path) -> Iterator[None]:
    """Run the block in ``folder`` (a spec's relative file paths are read from there)."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def build_with_progress(spec_path: Path, tasks_dir: Path) -> Path:
    """Build the spec's task into ``tasks_dir``; the files its params name (``data_file``,
    ``model_file``) are read relative to the spec's folder."""
    spec = load_spec(spec_path)
    tasks_dir = tasks_dir.resolve()
    with (
        console.status(f"building {spec.id} ({spec.kind})") as status,
        _working_folder(spec_path.resolve().parent),
    ):

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
    fields = parse_fields(field)
    task = open_task(task_dir)
    summary = task.kind.validate(task.spec, paths=task.paths, file=file, fields=fields)
    console.print(f"[green]valid[/] {json.dumps(summary)}")


@app.command("score")
def score(
    task_dir: Annotated[Path, typer.Argument(help="A built task's folder (with hidden/).")],
    file: Annotated[Path, typer.Argument(help="The file to score.")],
    field: FieldOpt = None,
) -> None:
    """Score a file with the server's own scorer (needs the task's hidden answers)."""
    fields = parse_fields(field)
    task = open_task(task_dir)
    task.kind.validate(task.spec, paths=task.paths, file=file, fields=fields)
    result = task.kind.score(task.spec, paths=task.paths, file=file, fields=fields)
    out.print_json(json.dumps(result.to_json()))


#: What ``task new`` adds to a kind's params: the instructor's own files, commented out.
OWN_FILES = {
    "membership-inference": (
        "# Your own data and target instead of the data set and training above:\n"
        "# data_file: my-data.npz      # arrays x (n, ...), y (n,) and, with model_file, member\n"
        "#                             # (1 where the target was trained on the row, else 0)\n"
        "# model_file: my-target.safetensors   # saved with trustlab.save_model, or .onnx\n"
    ),
    "robustness": (
        "# Your own data and baseline instead of the data set and training above:\n"
        "# data_file: my-images.npz    # x (n, C, H, W) in [0, 1], y (n,)\n"
        "# model_file: my-baseline.safetensors   # one of the architectures above\n"
    ),
    "model-extraction": (
        "# Your own data and victim instead of the data set and training above:\n"
        "# data_file: my-data.npz      # x (n, ...), y (n,)\n"
        "# model_file: my-victim.safetensors     # saved with trustlab.save_model, or .onnx\n"
    ),
    "membership-defence": (
        "# Your own data instead of the data set above:\n"
        "# data_file: my-data.npz      # x (n, ...), y (n,)\n"
    ),
}
MSG_NEW_EXISTS = "{path} already exists; pass --force to overwrite it, or choose another --out."
MSG_NEW_NAME = (
    "The task name {name!r} must be 3 to 64 characters: lower-case letters, digits and '-', "
    "starting and ending with a letter or digit (it becomes the task's id)."
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")


def scaffold(kind: str, name: str) -> str:
    """An editable task spec of ``kind`` with the id ``name``: the built-in example of the
    kind when there is one, else the shared fields and empty params."""
    from trustlab.cli.arena import demo_specs

    if not _NAME.match(name):
        raise ConfigurationError(MSG_NEW_NAME.format(name=name))
    if kind not in list_kinds():
        raise ConfigurationError(
            f"Unknown task kind {kind!r}; choose one of: {', '.join(list_kinds())}."
        )
    header = (
        f"# A {kind} task: edit the fields below, then build it with\n"
        f"#   trustlab task build {name}.yaml\n"
        "# Paths in params are read relative to this file's folder.\n"
    )
    examples = [path for path in demo_specs() if load_spec(path).kind == kind]
    if examples:
        lines = examples[0].read_text(encoding="utf-8").splitlines()
        body = [line for line in lines if not line.startswith("#")]
        text = "\n".join(body) + "\n"
        text = re.sub(r"(?m)^id: .*$", f"id: {name}", text, count=1)
        text = re.sub(r"(?m)^title: .*$", f'title: "{name}"', text, count=1)
    else:
        text = (
            f'id: {name}\nkind: {kind}\ntitle: "{name}"\ndescription: >-\n  What the teams '
            "must do.\ndeadline: null\npublic_fraction: 0.3\nmetric: null\n"
            "cooldown: {accepted: 10s, failed: 5s}\nlimits: {daily: 100, total: null}\n"
            "max_file_size: 10MB\ndataset: digits\nseed: 0\nparams: {}\n"
        )
    own = OWN_FILES.get(kind)
    if own is not None and text.rstrip().splitlines()[-1].startswith("  "):
        text += "".join(f"  {line}\n" for line in own.splitlines())
    parse_spec(yaml.safe_load(text), source=f"the scaffold of {kind}")
    return header + text


@app.command("new")
def new(
    kind: Annotated[str, typer.Argument(help="The task kind (see 'trustlab task list').")],
    name: Annotated[str, typer.Argument(help="The task's id, e.g. mia-week3.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Where to write the spec [./NAME.yaml].")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write an editable task spec of KIND named NAME, ready for 'trustlab task build'."""
    text = scaffold(kind, name)
    path = out_file or Path(f"{name}.yaml")
    if path.exists() and not force:
        raise ConfigurationError(MSG_NEW_EXISTS.format(path=path))
    path.write_text(text, encoding="utf-8")
    console.print(f"wrote the {kind} task [bold]{name}[/]; edit it, then build it with:")
    console.print(f"  trustlab task build {path}", highlight=False, soft_wrap=True)
    out.print(str(path), highlight=False, markup=False, soft_wrap=True)

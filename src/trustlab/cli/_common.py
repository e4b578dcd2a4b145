"""Options and helpers shared by every command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trustlab.server.settings import Settings

console = Console(stderr=True)
out = Console()

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder for the database, tasks and submissions [env TRUSTLAB_DATA_DIR; "
        "default ./trustlab-data].",
        show_default=False,
    ),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db [env "
        "TRUSTLAB_DATABASE_URL; default SQLite in the data folder].",
        show_default=False,
    ),
]


def settings_from(
    data_dir: Path | None = None, database_url: str | None = None, **overrides: object
) -> Settings:
    values: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    return Settings(**values)  # type: ignore[arg-type]


FieldOpt = Annotated[
    list[str] | None,
    typer.Option("--field", help="A form field the task asks for, as NAME=VALUE (repeatable)."),
]


def parse_fields(values: list[str] | None) -> dict[str, str]:
    """``["model_name=resnet18"]`` → ``{"model_name": "resnet18"}``."""
    fields = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--field {item!r} must look like NAME=VALUE")
        fields[name] = value
    return fields

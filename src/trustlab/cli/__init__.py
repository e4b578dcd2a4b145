"""The ``trustlab`` command line."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.markup import escape

from trustlab import __version__
from trustlab.cli import admin, arena, client, task
from trustlab.cli._common import console
from trustlab.core.errors import TrustlabError

app = typer.Typer(
    name="trustlab",
    help="trustlab: attacks, defences and metrics for trustworthy ML, and an arena to run "
    "challenges on them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(admin.app, name="admin")
app.add_typer(task.app, name="task")
app.command("demo")(arena.demo)
app.command("serve")(arena.serve_cmd)
app.command("worker")(arena.worker)
app.command("submit")(client.submit)
app.command("download")(client.download)


@app.command("version")
def version() -> None:
    """Print trustlab's version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point: trustlab's own errors become one line on stderr and exit code 1."""
    try:
        app(standalone_mode=False)
    except TrustlabError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except (ValidationError, SettingsError) as exc:
        console.print(
            f"[red]error:[/] invalid TRUSTLAB_* setting: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(1)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise

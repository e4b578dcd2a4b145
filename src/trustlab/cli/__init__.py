"""The ``trustlab`` command line."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.markup import escape

from trustlab import __version__
from trustlab.cli import admin, arena, audit, client, task
from trustlab.cli._common import console
from trustlab.core.errors import TrustlabError

app = typer.Typer(
    name="trustlab",
    help="trustlab: attacks, defences and metrics for trustworthy ML, and an arena to run "
    "challenges on them.",
    no_args_is_help=False,  # a bare command is a one-line usage error (see main)
    pretty_exceptions_enable=False,
)
app.add_typer(admin.app, name="admin")
app.add_typer(task.app, name="task")
app.command("demo")(arena.demo)
app.command("serve")(arena.serve_cmd)
app.command("worker")(arena.worker)
app.command("submit")(client.submit)
app.command("download")(client.download)
app.command("submissions")(client.submissions)
app.command("select")(client.select)
app.command("unselect")(client.unselect)
app.command("audit")(audit.audit)


@app.command("version")
def version() -> None:
    """Print trustlab's version."""
    typer.echo(__version__)


#: The exit code of a usage error (unknown command, missing or bad argument), as click's.
USAGE_ERROR = 2


def _usage_line(exc: Exception) -> str:
    """One line for a usage error: what was wrong, and where to look for help."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "trustlab"
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    names = getattr(ctx.command, "list_commands", None) if ctx is not None else None
    missing = type(exc).__name__ == "NoArgsIsHelpError" or message == "Missing command."
    if missing and names is not None:
        message = f"Missing command; choose one of: {', '.join(names(ctx))}."
    return f"{message} (see '{command} --help')"


def _is_click_error(exc: Exception) -> bool:
    """Whether ``exc`` is a usage or other error of click, or of the click that typer bundles."""
    import click

    return isinstance(exc, click.ClickException | typer.TyperException) and hasattr(
        exc, "format_message"
    )


def main() -> None:
    """Entry point: errors become one line on stderr and a non-zero exit code, never a traceback.

    trustlab's own errors exit with 1, usage errors (an unknown command, a missing or bad
    argument, a bad ``--field``) and invalid settings with 2.
    """
    try:
        # Outside standalone mode click returns the code of a ``typer.Exit`` instead of
        # exiting with it: pass it on, so that e.g. a failed submission exits non-zero.
        code = app(standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            sys.exit(code)
    except TrustlabError as exc:
        _error(str(exc))
        sys.exit(1)
    except (ValidationError, SettingsError) as exc:
        _error(f"invalid TRUSTLAB_* setting: {exc}")
        sys.exit(USAGE_ERROR)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(1)
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        # NoArgsIsHelpError, BadParameter, MissingParameter, NoSuchOption, ... are UsageErrors.
        if any(base.__name__ == "UsageError" for base in type(exc).__mro__):
            _error(_usage_line(exc))
            sys.exit(USAGE_ERROR)
        _error(" ".join(exc.format_message().split()))  # type: ignore[attr-defined]
        sys.exit(int(getattr(exc, "exit_code", 1)))


def _error(message: str) -> None:
    console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)

"""``trustlab admin``: teams and their keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trustlab.cli._common import DatabaseOpt, DataDirOpt, console, out, settings_from
from trustlab.server.arena import Arena
from trustlab.server.db import write_session
from trustlab.server.models import utcnow
from trustlab.server.services import teams

app = typer.Typer(help="Administer the arena: teams and API keys.", no_args_is_help=True)
team_app = typer.Typer(
    help="Create, list, revoke teams and rotate their keys.", no_args_is_help=True
)
app.add_typer(team_app, name="team")

ExpiresOpt = Annotated[
    float | None,
    typer.Option("--expires-in-days", min=0.0, help="Key lifetime in days (default: no expiry)."),
]


def _arena(data_dir: Path | None, database_url: str | None) -> Arena:
    arena = Arena(settings_from(data_dir, database_url))
    arena.start()
    return arena


def _expiry(days: float | None) -> datetime | None:
    return utcnow() + timedelta(days=days) if days else None


@team_app.command("create")
def create(
    name: str,
    expires_in_days: ExpiresOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Create a team. Its key is printed once, alone on the last line of stdout."""
    arena = _arena(data_dir, database_url)
    expires = _expiry(expires_in_days)
    with write_session(arena.sessions) as session:
        team, key = teams.create_team(session, name=name, expires_at=expires)
    console.print(f"Created team [bold]{team.name}[/]. Its API key (shown only now):")
    out.print(key, soft_wrap=True, highlight=False)


@team_app.command("rotate")
def rotate(
    name: str,
    expires_in_days: ExpiresOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Give a team a new key (the old one stops working); printed alone on the last line."""
    arena = _arena(data_dir, database_url)
    expires = _expiry(expires_in_days)
    with write_session(arena.sessions) as session:
        key = teams.rotate_key(session, name=name, expires_at=expires)
    console.print(f"New API key for team [bold]{name}[/] (shown only now):")
    out.print(key, soft_wrap=True, highlight=False)


@team_app.command("revoke")
def revoke(name: str, data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """Revoke a team's key: its requests are refused from now on."""
    arena = _arena(data_dir, database_url)
    with write_session(arena.sessions) as session:
        teams.revoke(session, name=name)
    console.print(f"Revoked the key of team [bold]{name}[/].")


@team_app.command("list")
def list_(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """List the teams and the state of their keys."""
    arena = _arena(data_dir, database_url)
    with arena.sessions() as session:
        rows = teams.list_teams(session)
    table = Table("team", "created", "key", "expires")
    now = utcnow()
    for team in rows:
        if team.revoked_at:
            state = "revoked"
        elif team.expires_at and team.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        table.add_row(
            team.name,
            team.created_at.strftime("%Y-%m-%d %H:%M"),
            state,
            team.expires_at.strftime("%Y-%m-%d %H:%M") if team.expires_at else "-",
        )
    out.print(table)

"""``trustlab admin``: teams, members and keys; grades, rescoring, cancelling, flags."""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select

from trustlab.cli._common import DatabaseOpt, DataDirOpt, console, out, settings_from
from trustlab.core.errors import ConfigurationError
from trustlab.server.arena import Arena
from trustlab.server.db import write_session
from trustlab.server.models import Submission, utcnow
from trustlab.server.services import staff, teams

app = typer.Typer(
    help="Administer the arena: teams, members and keys; grades, rescoring, cancelling.",
    no_args_is_help=False,  # a bare command is a one-line usage error
)
team_app = typer.Typer(
    help="Create, import, list, show and revoke teams; manage members; rotate keys.",
    no_args_is_help=False,  # a bare command is a one-line usage error
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
        people = {team.id: len(teams.members_of(session, team)) for team in rows}
    table = Table("team", "members", "created", "key", "expires")
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
            str(people[team.id]),
            team.created_at.strftime("%Y-%m-%d %H:%M"),
            state,
            team.expires_at.strftime("%Y-%m-%d %H:%M") if team.expires_at else "-",
        )
    out.print(table)


MSG_KEYS_EXIST = (
    "{path} already exists; name a new file with --keys-out (keys are never overwritten)."
)


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to a new file only its owner can read (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(MSG_KEYS_EXIST.format(path=path)) from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


@team_app.command("import")
def import_(
    roster: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    keys_out: Annotated[
        Path | None,
        typer.Option(
            "--keys-out",
            help="New file for the new teams' keys and login links (mode 0600) [default: "
            "DATA_DIR/keys/keys-<time>.csv].",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="The arena's public address, to write full login links [env TRUSTLAB_PUBLIC_URL].",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Create teams and members from a CSV roster (columns team, member, email).

    Idempotent: running it again adds only what is new. The keys of new teams, with a
    one-time login link to each team's status page, go to a new file only you can read;
    they are never printed or logged.
    """
    arena = _arena(data_dir, database_url)
    settings = arena.settings
    text = roster.read_text(encoding="utf-8-sig")
    base = (url or settings.public_url).rstrip("/")
    with write_session(arena.sessions) as session:
        report = teams.import_roster(session, text, source=str(roster))
        links = {}
        for name, _ in report.new_teams:
            team = teams.get_team(session, name=name)
            token = teams.new_login(
                session,
                team=team,
                kind=teams.LINK,
                lifetime=timedelta(days=settings.login_link_days),
            )
            links[name] = f"{base}/team/login/{token}"
        if report.new_teams:
            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            target = keys_out or settings.data_dir / "keys" / f"keys-{stamp}.csv"
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["team", "api_key", "login_link"])
            for name, key in report.new_teams:
                writer.writerow([name, key, links[name]])
            write_secret_file(target, buffer.getvalue())
    console.print(
        f"{len(report.new_teams)} new team(s), {len(report.new_members)} new member(s), "
        f"{report.unchanged} row(s) already present."
    )
    if report.new_teams:
        console.print(
            f"The new keys and one-time login links (valid {settings.login_link_days:g} days) "
            f"are in {target} (mode 0600); hand each team its own row."
        )


@team_app.command("show")
def show(name: str, data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """Show a team: its members, its key's state and its submissions per task."""
    arena = _arena(data_dir, database_url)
    with arena.sessions() as session:
        team = teams.get_team(session, name=name)
        members = teams.members_of(session, team)
        per_task = session.execute(
            select(Submission.task_id, Submission.status, func.count())
            .where(Submission.team_id == team.id)
            .group_by(Submission.task_id, Submission.status)
        ).all()
    out.print(f"team {team.name} (created {team.created_at:%Y-%m-%d %H:%M})", highlight=False)
    state = "revoked" if team.revoked_at else "active"
    out.print(f"key: {state}, id {team.key_id}", highlight=False)
    table = Table("member", "e-mail / student id")
    for member in members:
        table.add_row(member.name, member.email or "-")
    out.print(table)
    if per_task:
        counts = Table("task", "status", "submissions")
        for task_id, status, n in per_task:
            counts.add_row(task_id, status, str(n))
        out.print(counts)


@team_app.command("add-member")
def add_member(
    team: str,
    member: str,
    email: Annotated[
        str | None, typer.Option("--email", help="E-mail address or student id.")
    ] = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Add a person to a team."""
    arena = _arena(data_dir, database_url)
    with write_session(arena.sessions) as session:
        row = teams.get_team(session, name=team)
        _, new = teams.add_member(session, team=row, name=member, email=email)
    verb = "Added" if new else "Already present:"
    console.print(f"{verb} {member} in team [bold]{team}[/].")


@team_app.command("remove-member")
def remove_member(
    team: str,
    member: Annotated[str, typer.Argument(help="The member's e-mail/student id or name.")],
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Remove a person from a team."""
    arena = _arena(data_dir, database_url)
    with write_session(arena.sessions) as session:
        row = teams.get_team(session, name=team)
        teams.remove_member(session, team=row, who=member)
    console.print(f"Removed {member} from team [bold]{team}[/].")


@team_app.command("login-link")
def login_link(
    name: str,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The arena's public address [env TRUSTLAB_PUBLIC_URL]."),
    ] = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Make a one-time login link to a team's status page; printed alone on stdout."""
    arena = _arena(data_dir, database_url)
    settings = arena.settings
    with write_session(arena.sessions) as session:
        team = teams.get_team(session, name=name)
        token = teams.new_login(
            session, team=team, kind=teams.LINK, lifetime=timedelta(days=settings.login_link_days)
        )
    base = (url or settings.public_url).rstrip("/")
    console.print(f"One-time login link for team [bold]{name}[/]:")
    out.print(f"{base}/team/login/{token}", soft_wrap=True, highlight=False)


@app.command("export")
def export(
    task_id: str,
    grades: Annotated[
        Path, typer.Option("--csv", help="Where to write one row per team (the grades).")
    ],
    history: Annotated[
        Path | None,
        typer.Option("--history", help="Also write every submission and score version here."),
    ] = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Export a task's grades: each team's final choice (public and private score), its
    rank, its number of submissions and its members; with --history, every submission."""
    arena = _arena(data_dir, database_url)
    task = arena.task(task_id)
    with arena.sessions() as session:
        grades_text = staff.grades_csv(session, task=task)
        history_text = staff.history_csv(session, task_id=task_id) if history else None
    grades.write_text(grades_text, encoding="utf-8")
    console.print(f"Wrote {grades_text.count(chr(10)) - 1} team row(s) to {grades}.")
    if history is not None and history_text is not None:
        history.write_text(history_text, encoding="utf-8")
        console.print(f"Wrote {history_text.count(chr(10)) - 1} history row(s) to {history}.")
    if task.deadline is None or task.deadline > utcnow():
        console.print(
            "[yellow]note:[/] the task's deadline has not passed; ranks and private scores are "
            "those the private board would show if it closed now."
        )


@app.command("rescore")
def rescore(
    task_id: str,
    submission: Annotated[
        str | None, typer.Option("--submission", help="Rescore only this submission.")
    ] = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Queue a task's scored submissions (or one) for scoring again, e.g. after a scorer fix.

    Scores are versioned: the current ones stay until the new ones arrive, and every
    version stays in the history (admin export --history)."""
    arena = _arena(data_dir, database_url)
    arena.task(task_id)
    ids = staff.rescore(arena.sessions, task_id=task_id, submission_id=submission)
    for submission_id in ids:
        arena.dispatch(submission_id)
    console.print(f"Queued {len(ids)} submission(s) of {task_id} for rescoring.")


@app.command("cancel")
def cancel(
    submission_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Shown to the team.")] = "",
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Cancel a queued or running submission: it fails with the reason, shown to its team."""
    arena = _arena(data_dir, database_url)
    old = staff.cancel(arena.sessions, submission_id=submission_id, reason=reason)
    console.print(f"Cancelled submission {submission_id} (it was {old}).")


@app.command("flags")
def flags(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """List the teams the extraction detector flagged, newest first."""
    arena = _arena(data_dir, database_url)
    with arena.sessions() as session:
        rows = staff.flags(session)
    if not rows:
        console.print("No team has been flagged.")
        return
    table = Table("flagged", "task", "team", "queries used", "reason")
    for account, team in rows:
        assert account.flagged_at is not None
        table.add_row(
            account.flagged_at.strftime("%Y-%m-%d %H:%M"),
            account.task_id,
            team,
            str(account.used),
            account.flag_reason or "",
        )
    out.print(table)

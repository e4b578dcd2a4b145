"""Teams, their members, their API keys and their status page logins."""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trustlab.core.errors import ConfigurationError, UnknownNameError
from trustlab.server import security
from trustlab.server.errors import ApiError
from trustlab.server.models import Team, TeamLogin, TeamMember, utcnow

MSG_NO_KEY = "No API key: send your team's key in the X-API-Key header."
MSG_BAD_KEY = (
    "The X-API-Key is not valid: check that you copied the whole key your course staff gave you."
)
MSG_REVOKED = "This API key was revoked on {when}; ask the course staff for a new one."
MSG_EXPIRED = "This API key expired on {when}; ask the course staff for a new one."
MSG_NAME = "Team name {name!r} is not allowed: use 1-64 letters, digits, spaces, '.', '_' or '-'."
MSG_EXISTS = "A team named {name!r} already exists; pick another name or rotate its key."
MSG_NO_TEAM = "No team named {name!r}; 'trustlab admin team list' shows the teams."

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


def create_team(
    session: Session, *, name: str, expires_at: datetime | None = None
) -> tuple[Team, str]:
    """Create a team; returns it and its key (shown once, stored only as a hash)."""
    name = name.strip()
    if not _NAME.match(name):
        raise ConfigurationError(MSG_NAME.format(name=name))
    if session.scalar(select(Team).where(Team.name == name)) is not None:
        raise ConfigurationError(MSG_EXISTS.format(name=name))
    key, key_id, key_hash = security.new_key()
    team = Team(name=name, key_id=key_id, key_hash=key_hash, expires_at=expires_at)
    session.add(team)
    try:
        session.flush()
    except IntegrityError:
        raise ConfigurationError(MSG_EXISTS.format(name=name)) from None
    return team, key


def get_team(session: Session, *, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name))
    if team is None:
        raise UnknownNameError(MSG_NO_TEAM.format(name=name))
    return team


def rotate_key(session: Session, *, name: str, expires_at: datetime | None = None) -> str:
    """Give a team a new key (the old one stops working) and clear any revocation."""
    team = get_team(session, name=name)
    key, key_id, key_hash = security.new_key()
    team.key_id, team.key_hash = key_id, key_hash
    team.revoked_at, team.expires_at = None, expires_at
    return key


def revoke(session: Session, *, name: str) -> Team:
    team = get_team(session, name=name)
    if team.revoked_at is None:
        team.revoked_at = utcnow()
    return team


def list_teams(session: Session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.name)))


def authenticate(session: Session, key: str | None) -> Team:
    """The team a key belongs to; :class:`ApiError` 401 otherwise."""
    if not key:
        raise ApiError(401, MSG_NO_KEY)
    key = key.strip()
    key_id = security.key_id_of(key)
    team = session.scalar(select(Team).where(Team.key_id == key_id)) if key_id else None
    # Compare against a dummy hash when no row matched, so timing does not tell them apart.
    if not security.matches(key, team.key_hash if team else "0" * 64) or team is None:
        raise ApiError(401, MSG_BAD_KEY)
    now = utcnow()
    if team.revoked_at is not None:
        raise ApiError(401, MSG_REVOKED.format(when=team.revoked_at.isoformat()))
    if team.expires_at is not None and team.expires_at <= now:
        raise ApiError(401, MSG_EXPIRED.format(when=team.expires_at.isoformat()))
    return team


# Members ---------------------------------------------------------------------------------

MSG_MEMBER_NAME = "A member needs a name (1-200 characters); got {name!r}."
MSG_MEMBER_EMAIL = (
    "{email!r} is not an e-mail address or student id: use 1-254 characters without spaces."
)
MSG_MEMBER_ELSEWHERE = "{who} is already in team {team!r}; remove them there first."
MSG_NO_MEMBER = "Team {team!r} has no member {who!r}; 'trustlab admin team show {team}' lists them."

_EMAIL = re.compile(r"^\S{1,254}$")


def _who(name: str, email: str | None) -> str:
    return f"{name} <{email}>" if email else name


def find_member(session: Session, *, name: str, email: str | None) -> TeamMember | None:
    """A member by e-mail/student id where one is given, else by name."""
    if email:
        return session.scalar(select(TeamMember).where(TeamMember.email == email))
    return session.scalar(
        select(TeamMember).where(TeamMember.name == name).where(TeamMember.email.is_(None))
    )


def add_member(
    session: Session, *, team: Team, name: str, email: str | None = None
) -> tuple[TeamMember, bool]:
    """Add a person to ``team``; returns the member and whether it is new (idempotent)."""
    name, email = name.strip(), (email or "").strip() or None
    if not name or len(name) > 200:
        raise ConfigurationError(MSG_MEMBER_NAME.format(name=name))
    if email is not None and not _EMAIL.match(email):
        raise ConfigurationError(MSG_MEMBER_EMAIL.format(email=email))
    existing = find_member(session, name=name, email=email)
    if existing is not None:
        if existing.team_id != team.id:
            other = session.get(Team, existing.team_id)
            raise ConfigurationError(
                MSG_MEMBER_ELSEWHERE.format(
                    who=_who(name, email), team=other.name if other else "?"
                )
            )
        return existing, False
    member = TeamMember(team_id=team.id, name=name, email=email)
    session.add(member)
    session.flush()
    return member, True


def remove_member(session: Session, *, team: Team, who: str) -> TeamMember:
    """Remove the member of ``team`` whose e-mail/student id or name is ``who``."""
    member = session.scalar(
        select(TeamMember)
        .where(TeamMember.team_id == team.id)
        .where((TeamMember.email == who) | (TeamMember.name == who))
    )
    if member is None:
        raise UnknownNameError(MSG_NO_MEMBER.format(team=team.name, who=who))
    session.delete(member)
    return member


def members_of(session: Session, team: Team) -> list[TeamMember]:
    return list(
        session.scalars(
            select(TeamMember).where(TeamMember.team_id == team.id).order_by(TeamMember.name)
        )
    )


# Roster import -------------------------------------------------------------------------

MSG_ROSTER_COLUMNS = (
    "Roster {source}: the header must name the columns team, member and email (in any order; "
    "email may hold a student id and may be empty); got {header}."
)
MSG_ROSTER_ROW = "Roster {source}, line {line}: {problem}"
ROSTER_COLUMNS = ("team", "member", "email")


@dataclass
class ImportReport:
    """What a roster import changed: new teams with their keys, and new members."""

    new_teams: list[tuple[str, str]] = field(default_factory=list)
    new_members: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0


def read_roster(text: str, *, source: str = "roster") -> list[tuple[int, str, str, str | None]]:
    """``(line, team, member, email)`` rows of a roster CSV (header: team, member, email)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not {"team", "member"} <= set(header):
        raise ConfigurationError(
            MSG_ROSTER_COLUMNS.format(source=source, header=", ".join(header) or "nothing")
        )
    reader.fieldnames = header
    rows = []
    for number, record in enumerate(reader, start=2):
        team = (record.get("team") or "").strip()
        member = (record.get("member") or "").strip()
        email = (record.get("email") or "").strip() or None
        if not team and not member and not email:
            continue
        if not team or not member:
            raise ConfigurationError(
                MSG_ROSTER_ROW.format(
                    source=source, line=number, problem="both 'team' and 'member' are required"
                )
            )
        rows.append((number, team, member, email))
    return rows


def import_roster(session: Session, text: str, *, source: str = "roster") -> ImportReport:
    """Create the teams and members of a roster that do not exist yet (idempotent).

    Keys of new teams are returned, never logged. Every row is checked before anything is
    written: a bad row changes nothing.
    """
    report = ImportReport()
    for line, team_name, member, email in read_roster(text, source=source):
        try:
            team = session.scalar(select(Team).where(Team.name == team_name.strip()))
            if team is None:
                team, key = create_team(session, name=team_name)
                report.new_teams.append((team.name, key))
            _, new = add_member(session, team=team, name=member, email=email)
        except ConfigurationError as exc:
            raise ConfigurationError(
                MSG_ROSTER_ROW.format(source=source, line=line, problem=exc)
            ) from None
        if new:
            report.new_members.append((team.name, _who(member, email)))
        else:
            report.unchanged += 1
    return report


# Team page logins ------------------------------------------------------------------------

MSG_LOGIN_INVALID = (
    "This login link or session is not valid (used, expired, or the team's key changed); "
    "log in with your team's API key or ask the course staff for a new link."
)
LINK, SESSION = "link", "session"


def new_login(session: Session, *, team: Team, kind: str, lifetime: timedelta) -> str:
    """A fresh login token for ``team`` (a one-time link or a browser session); only its hash
    is stored."""
    token = secrets.token_urlsafe(32)
    session.add(
        TeamLogin(
            team_id=team.id,
            token_hash=security.hash_key(token),
            kind=kind,
            key_id=team.key_id,
            expires_at=utcnow() + lifetime,
        )
    )
    session.flush()
    return token


def use_login(session: Session, token: str | None, *, kind: str) -> Team:
    """The team a login token belongs to (401 otherwise); a link is used up by this call."""
    if not token:
        raise ApiError(401, MSG_LOGIN_INVALID)
    row = session.scalar(
        select(TeamLogin)
        .where(TeamLogin.token_hash == security.hash_key(token))
        .where(TeamLogin.kind == kind)
        .with_for_update()
    )
    now = utcnow()
    if row is None or row.expires_at <= now or (kind == LINK and row.used_at is not None):
        raise ApiError(401, MSG_LOGIN_INVALID)
    team = session.get(Team, row.team_id)
    if team is None or team.key_id != row.key_id:
        raise ApiError(401, MSG_LOGIN_INVALID)
    if team.revoked_at is not None:
        raise ApiError(401, MSG_REVOKED.format(when=team.revoked_at.isoformat()))
    if team.expires_at is not None and team.expires_at <= now:
        raise ApiError(401, MSG_EXPIRED.format(when=team.expires_at.isoformat()))
    if kind == LINK:
        row.used_at = now
    return team


def end_login(session: Session, token: str | None) -> None:
    if token:
        row = session.scalar(
            select(TeamLogin).where(TeamLogin.token_hash == security.hash_key(token))
        )
        if row is not None:
            row.expires_at = utcnow()

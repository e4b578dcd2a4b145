"""Teams and their API keys."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trustlab.core.errors import ConfigurationError, UnknownNameError
from trustlab.server import security
from trustlab.server.errors import ApiError
from trustlab.server.models import Team, utcnow

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

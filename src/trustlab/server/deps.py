"""FastAPI dependencies as typed aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from trustlab.server.arena import Arena
from trustlab.server.models import Team
from trustlab.server.services.teams import authenticate


def get_arena(request: Request) -> Arena:
    arena: Arena = request.app.state.arena
    return arena


ArenaDep = Annotated[Arena, Depends(get_arena)]


def get_session(arena: ArenaDep) -> Iterator[Session]:
    """A session for a handler that only reads (a leaderboard, a submission's status)."""
    with arena.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_team(
    arena: ArenaDep,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
) -> Team:
    """The team behind the key, read in a session of its own that is closed at once.

    The request goes on without holding a database connection: an upload, a file check or a
    slow client then costs no connection, and the pool serves every concurrent request.
    """
    with arena.sessions() as session:
        return authenticate(session, x_api_key)


TeamDep = Annotated[Team, Depends(current_team)]

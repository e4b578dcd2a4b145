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
    with arena.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_team(
    session: SessionDep,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
) -> Team:
    return authenticate(session, x_api_key)


TeamDep = Annotated[Team, Depends(current_team)]

"""``trustlab admin`` for a course: roster import, members, grade export, rescore, cancel,
flags (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import stat
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from trustlab.cli import app
from trustlab.server.arena import Arena
from trustlab.server.db import write_session
from trustlab.server.models import QueryAccount, Submission, Team, utcnow
from trustlab.server.services import teams
from trustlab.server.settings import Settings

runner = CliRunner()
TASK = "mia-small"

ROSTER = """team,member,email
Team Ada,Ada Lovelace,ada@uni.example
Team Ada,Charles Babbage,s1234567
Team Grace,Grace Hopper,grace@uni.example
"""


@pytest.fixture(autouse=True)
def _no_trustlab_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRUSTLAB_"):
            monkeypatch.delenv(name)


@pytest.fixture
def where(data_dir: Path, database_url: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--database-url", database_url]


def cli(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=True)


def _arena(data_dir: Path, database_url: str) -> Arena:
    arena = Arena(Settings(data_dir=data_dir, database_url=database_url))
    arena.start()
    return arena


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.mark.slow
def test_roster_import_is_idempotent_and_keys_go_to_a_0600_file(
    tmp_path: Path, where: list[str], data_dir: Path, database_url: str
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    keys = tmp_path / "keys.csv"
    first = cli(
        "admin", "team", "import", roster, "--keys-out", keys, "--url", "https://a.b", *where
    )
    assert first.exit_code == 0, first.output
    assert "2 new team(s), 3 new member(s)" in first.output
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    written = _rows(keys)
    assert [r["team"] for r in written] == ["Team Ada", "Team Grace"]
    for row in written:
        assert row["api_key"] not in first.output  # never printed
        assert row["login_link"].startswith("https://a.b/team/login/")
    arena = _arena(data_dir, database_url)
    with arena.sessions() as session:
        assert teams.authenticate(session, written[0]["api_key"]).name == "Team Ada"
        ada = teams.get_team(session, name="Team Ada")
        assert [m.email for m in teams.members_of(session, ada)] == ["ada@uni.example", "s1234567"]
    arena.close()

    roster.write_text(ROSTER + "Team Grace,Alan Turing,alan@uni.example\n")
    second = cli("admin", "team", "import", roster, *where)
    assert second.exit_code == 0, second.output
    assert "0 new team(s), 1 new member(s), 3 row(s) already present" in second.output
    assert not (data_dir / "keys").exists()  # no new team: no key file


def test_a_bad_roster_row_changes_nothing(
    tmp_path: Path, where: list[str], data_dir: Path, database_url: str
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER + "Team Bad,,x@y\n")
    result = cli("admin", "team", "import", roster, *where)
    assert result.exit_code != 0
    assert "line 5" in str(result.exception) or "line 5" in result.output
    arena = _arena(data_dir, database_url)
    with arena.sessions() as session:
        assert teams.list_teams(session) == []
    arena.close()
    roster.write_text("name,who\nx,y\n")
    result = cli("admin", "team", "import", roster, *where)
    assert "team, member and email" in str(result.exception)


def test_members_are_added_shown_and_removed(where: list[str]) -> None:
    assert cli("admin", "team", "create", "alpha", *where).exit_code == 0
    added = cli("admin", "team", "add-member", "alpha", "Ada", "--email", "ada@x", *where)
    assert added.exit_code == 0, added.output
    shown = cli("admin", "team", "show", "alpha", *where)
    assert "Ada" in shown.stdout and "ada@x" in shown.stdout
    assert cli("admin", "team", "create", "beta", *where).exit_code == 0
    clash = cli("admin", "team", "add-member", "beta", "Ada", "--email", "ada@x", *where)
    assert "already in team 'alpha'" in str(clash.exception)
    assert cli("admin", "team", "remove-member", "alpha", "ada@x", *where).exit_code == 0
    assert "ada@x" not in cli("admin", "team", "show", "alpha", *where).stdout
    gone = cli("admin", "team", "remove-member", "alpha", "ada@x", *where)
    assert "has no member" in str(gone.exception)


def _install(small_task_dir: Path, data_dir: Path) -> None:
    shutil.copytree(small_task_dir, data_dir / "tasks" / TASK)


def _scored(arena: Arena, team: str, public: float, private: float, **extra: Any) -> str:
    sid = uuid.uuid4().hex
    with write_session(arena.sessions) as session:
        team_id = session.scalar(select(Team.id).where(Team.name == team))
        session.add(
            Submission(
                id=sid,
                task_id=TASK,
                team_id=team_id,
                created_at=utcnow() - timedelta(minutes=5),
                filename="s.csv",
                path=f"{TASK}/{sid}/file.csv",
                size=1,
                sha256="0" * 64,
                fields={},
                summary={},
                public_score=public,
                private_score=private,
                public_metrics={},
                private_metrics={},
                **{"status": "scored", "score_version": 1, **extra},
            )
        )
    return sid


@pytest.mark.slow
def test_export_rescore_cancel_and_flags(
    tmp_path: Path, where: list[str], data_dir: Path, database_url: str, small_task_dir: Path
) -> None:
    _install(small_task_dir, data_dir)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    assert (
        cli("admin", "team", "import", roster, "--keys-out", tmp_path / "k.csv", *where).exit_code
        == 0
    )
    arena = _arena(data_dir, database_url)
    _scored(arena, "Team Ada", 0.9, 0.1)
    chosen = _scored(arena, "Team Ada", 0.5, 0.7, selected=True)
    _scored(arena, "Team Grace", 0.6, 0.4)
    queued = _scored(arena, "Team Grace", 0.0, 0.0, status="queued")
    with write_session(arena.sessions) as session:
        grace = session.scalar(select(Team.id).where(Team.name == "Team Grace"))
        session.add(
            QueryAccount(
                task_id=TASK, team_id=grace, used=12, flagged_at=utcnow(), flag_reason="PRADA"
            )
        )
    arena.close()

    grades, history = tmp_path / "grades.csv", tmp_path / "history.csv"
    result = cli("admin", "export", TASK, "--csv", grades, "--history", history, *where)
    assert result.exit_code == 0, result.output
    rows = _rows(grades)
    assert [(r["team"], r["rank"], r["private_score"]) for r in rows] == [
        ("Team Ada", "1", "0.7"),
        ("Team Grace", "2", "0.4"),
    ]
    assert rows[0]["submission_id"] == chosen and rows[0]["selected"] == "1"
    assert rows[0]["members"] == "Ada Lovelace; Charles Babbage" and rows[0]["submissions"] == "2"
    assert len(_rows(history)) == 4

    cancelled = cli("admin", "cancel", queued, "--reason", "duplicate", *where)
    assert cancelled.exit_code == 0, cancelled.output
    again = cli("admin", "cancel", queued, *where)
    assert "nothing to cancel" in str(again.exception)

    rescored = cli("admin", "rescore", TASK, *where)
    assert rescored.exit_code == 0 and "Queued 3 submission(s)" in rescored.output
    one = cli("admin", "rescore", TASK, "--submission", queued, *where)
    assert one.exit_code == 0 and "Queued 1" in one.output
    arena = _arena(data_dir, database_url)
    with arena.sessions() as session:
        statuses = set(session.scalars(select(Submission.status)))
        kept = session.get(Submission, chosen)
        assert kept is not None and kept.private_score == 0.7  # kept until the new score
    arena.close()
    assert statuses == {"queued"}

    flagged = cli("admin", "flags", *where)
    assert "Team Grace" in flagged.stdout and "PRADA" in flagged.stdout

"""Migration 0005 keeps every score recorded before it as version 1 of its submission."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from trustlab.server.db import _alembic_config, make_engine, upgrade


def test_scores_from_before_the_migration_become_version_1(database_url: str) -> None:
    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0004")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO teams (id, name, key_id, key_hash, created_at) "
                "VALUES (1, 'alpha', 'abcdefabcdef', :h, '2027-01-01 00:00:00')"
            ),
            {"h": "0" * 64},
        )
        conn.execute(
            text(
                "INSERT INTO tasks (id, kind, title, spec, manifest, path, updated_at) "
                "VALUES ('t', 'k', 'T', '{}', '{}', '/x', '2027-01-01 00:00:00')"
            )
        )
        for sid, score in (("scored1", 0.5), ("queued1", None)):
            conn.execute(
                text(
                    "INSERT INTO submissions (id, task_id, team_id, created_at, status, "
                    "filename, path, size, sha256, fields, summary, public_score, "
                    "private_score, attempts) VALUES (:id, 't', 1, '2027-01-01 00:00:00', "
                    ":status, 'f', 'p', 1, :sha, '{}', '{}', :s, :s, 0)"
                ),
                {"id": sid, "status": "scored" if score else "queued", "sha": "0" * 64, "s": score},
            )
    upgrade(engine)
    with engine.connect() as conn:
        history = conn.execute(
            text("SELECT submission_id, version, public_score FROM submission_scores")
        ).all()
        versions = dict(conn.execute(text("SELECT id, score_version FROM submissions")).all())
        selected = conn.execute(text("SELECT DISTINCT selected FROM submissions")).scalars().all()
    assert [tuple(r) for r in history] == [("scored1", 1, 0.5)]
    assert versions == {"scored1": 1, "queued1": 0}
    assert [bool(s) for s in selected] == [False]
    engine.dispose()

"""Course operations: team members, phases, final choices, score history, workers, logins.

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trustlab.server.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("phase", sa.String(32), nullable=True))
        batch.add_column(sa.Column("selected", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("score_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_team_members_team", "team_members", ["team_id"])
    op.create_table(
        "submission_scores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submission_id", sa.String(32), sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("public_score", sa.Float(), nullable=False),
        sa.Column("private_score", sa.Float(), nullable=False),
        sa.Column("public_metrics", sa.JSON(), nullable=True),
        sa.Column("private_metrics", sa.JSON(), nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("submission_id", "version", name="uq_submission_scores_version"),
    )
    op.create_table(
        "workers",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_heartbeat", UTCDateTime(), nullable=False),
        sa.Column("current_submission", sa.String(32), nullable=True),
        sa.Column("jobs", sa.Integer(), nullable=False),
    )
    op.create_table(
        "team_logins",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    # Scores recorded before this migration become version 1 of each scored submission.
    op.execute(
        "INSERT INTO submission_scores (submission_id, version, public_score, private_score, "
        "public_metrics, private_metrics, worker, created_at) "
        "SELECT id, 1, public_score, private_score, public_metrics, private_metrics, worker, "
        "COALESCE(finished_at, created_at) FROM submissions "
        "WHERE public_score IS NOT NULL AND private_score IS NOT NULL"
    )
    op.execute("UPDATE submissions SET score_version = 1 WHERE public_score IS NOT NULL")


def downgrade() -> None:
    op.drop_table("team_logins")
    op.drop_table("workers")
    op.drop_table("submission_scores")
    op.drop_index("ix_team_members_team", table_name="team_members")
    op.drop_table("team_members")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("score_version")
        batch.drop_column("selected")
        batch.drop_column("phase")

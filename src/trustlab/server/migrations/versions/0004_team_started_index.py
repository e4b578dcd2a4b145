"""An index for the queue's round-robin order: each team's latest job start.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-10
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_submissions_team_started", "submissions", ["team_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_submissions_team_started", table_name="submissions")

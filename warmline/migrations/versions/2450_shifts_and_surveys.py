"""shifts: the hourly slots agents pick per line; shift_weeks: the weeks managers published;
call_surveys: callers' post-call scores (1-5) by call, agent and line or campaign

Revision ID: 2450
Revises: 2500
Create Date: 2026-12-03 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "2450"
down_revision: str | None = "2500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shifts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("starts_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("picked_by", sa.String(64), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("agent", "starts_at", name="uq_shifts_agent_start"),
    )
    op.create_index("ix_shifts_agent", "shifts", ["agent"])
    op.create_index("ix_shifts_line", "shifts", ["line"])
    op.create_index("ix_shifts_starts_at", "shifts", ["starts_at"])
    op.create_table(
        "shift_weeks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.Column("published_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("line", "week", name="uq_shift_weeks_line_week"),
    )
    op.create_table(
        "call_surveys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_ref", sa.String(128), nullable=False, unique=True),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("line", sa.String(64), nullable=True),
        sa.Column("campaign", sa.String(64), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("answered_at", core.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_call_surveys_agent", "call_surveys", ["agent"])
    op.create_index("ix_call_surveys_line", "call_surveys", ["line"])
    op.create_index("ix_call_surveys_answered_at", "call_surveys", ["answered_at"])


def downgrade() -> None:
    op.drop_table("call_surveys")
    op.drop_table("shift_weeks")
    op.drop_index("ix_shifts_starts_at", table_name="shifts")
    op.drop_index("ix_shifts_line", table_name="shifts")
    op.drop_index("ix_shifts_agent", table_name="shifts")
    op.drop_table("shifts")

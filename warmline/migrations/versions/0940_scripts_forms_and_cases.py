"""campaigns' call scripts, forms and screen-pop columns; the hotline's case records

``campaigns.script`` (Markdown), ``campaigns.form`` (the questions, JSON) and
``campaigns.screen_pop`` (list columns shown on the agent's screen) are null for existing
campaigns: no script, no form, the screen pop shows what the script uses. ``cases`` keeps the 12345
hotline's case records (工单) until they are closed.

Revision ID: 0940
Revises: 0910
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0940"
down_revision: str | None = "0920"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch copy of the table: on SQLite a copy would cascade-delete contacts).
    op.add_column("campaigns", sa.Column("script", sa.Text(), nullable=True))
    op.add_column("campaigns", sa.Column("form", sa.JSON(), nullable=True))
    op.add_column("campaigns", sa.Column("screen_pop", sa.JSON(), nullable=True))
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_ref", sa.String(length=128), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=True),
        sa.Column("follow_up_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("call_ref", name=op.f("uq_cases_call_ref")),
    )
    op.create_index("ix_cases_status_follow_up", "cases", ["status", "follow_up_on"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_status_follow_up", table_name="cases")
    op.drop_table("cases")
    # SQLite (3.35+) drops a column in place when no index or constraint names it.
    op.drop_column("campaigns", "screen_pop")
    op.drop_column("campaigns", "form")
    op.drop_column("campaigns", "script")

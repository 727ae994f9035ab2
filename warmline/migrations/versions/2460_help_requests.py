"""help_requests, supervisor_actions, agent_cooldowns: help in a hard call

An agent's help key and abusive-call flag (help_requests), what supervisors did on a call (listen,
whisper, join: supervisor_actions) and the cool-down after a flagged call (agent_cooldowns; routing
offers no call until it ends). New tables only; the downgrade drops them.

Revision ID: 2460
Revises: 2450
Create Date: 2026-12-03 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "2460"
down_revision: str | None = "2450"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "help_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False, index=True),
        sa.Column("call_ref", sa.String(128), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False, index=True),
        sa.Column("answered_by", sa.String(64)),
    )
    op.create_table(
        "supervisor_actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("supervisor", sa.String(64), nullable=False, index=True),
        sa.Column("call_ref", sa.String(128), nullable=False, index=True),
        sa.Column("agent", sa.String(64)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.String(200)),
        sa.Column("snoop_channel", sa.String(128)),
        sa.Column("bridge_id", sa.String(128)),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "agent_cooldowns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False, index=True),
        sa.Column("call_ref", sa.String(128)),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("started_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", core.db.UTCDateTime(timezone=True), nullable=False, index=True),
        sa.Column("checked_in_by", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("agent_cooldowns")
    op.drop_table("supervisor_actions")
    op.drop_table("help_requests")

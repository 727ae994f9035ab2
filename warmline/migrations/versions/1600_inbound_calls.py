"""inbound_calls: one row per inbound call (line, arrival, queued, outcome, wait and talk time)

The history staffing forecasts (workforce/forecast.py) are made from. Calls before this revision
were not recorded, so forecasts start from it.

Revision ID: 1600
Revises: 1000
Create Date: 2026-12-02 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "1600"
down_revision: str | None = "1000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_calls",
        sa.Column("channel_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("line", sa.String(64), nullable=True),
        sa.Column("arrived_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("queued", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("wait_s", sa.Float(), nullable=False),
        sa.Column("talk_s", sa.Float(), nullable=False),
    )
    op.create_index("ix_inbound_calls_line", "inbound_calls", ["line"])
    op.create_index("ix_inbound_calls_arrived_at", "inbound_calls", ["arrived_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_calls_arrived_at", "inbound_calls")
    op.drop_index("ix_inbound_calls_line", "inbound_calls")
    op.drop_table("inbound_calls")

"""transfers: one row per transfer or consult an agent asked for (who, to whom, how, when, result);
campaigns.transfer_numbers: the outside numbers a campaign's calls may be transferred to

Revision ID: 2000
Revises: 1600
Create Date: 2026-12-02 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "2000"
down_revision: str | None = "1600"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("call_ref", sa.String(128), nullable=False),
        sa.Column("from_agent", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("number", sa.String(32), nullable=True),
        sa.Column("rung_agent", sa.String(64), nullable=True),
        sa.Column("to_agent", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.String(32), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("action_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("requested_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", core.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_transfers_call_ref", "transfers", ["call_ref"])
    op.create_index("ix_transfers_from_agent", "transfers", ["from_agent"])
    op.create_index("ix_transfers_action", "transfers", ["action"])
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("transfer_numbers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("transfer_numbers")
    op.drop_index("ix_transfers_action", "transfers")
    op.drop_index("ix_transfers_from_agent", "transfers")
    op.drop_index("ix_transfers_call_ref", "transfers")
    op.drop_table("transfers")

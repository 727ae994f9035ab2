"""dialer_node_leases: one dialer worker per Asterisk node at a time

A row per node: which worker holds it and until when (renewed by the holder; see
dialer/engine/lease.py and docs/faults.md). Nothing to move; the downgrade drops the table.

Revision ID: 2410
Revises: 2300
Create Date: 2026-12-03 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "2410"
down_revision: str | None = "2300"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dialer_node_leases",
        sa.Column("node", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dialer_node_leases")

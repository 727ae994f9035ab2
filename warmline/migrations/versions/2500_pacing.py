"""campaigns.pacing (abandon limit, window, grace, apology) and campaigns.pacing_live (the pacer's
latest reason and live figures, written by the dialer worker)

Revision ID: 2500
Revises: 2410
Create Date: 2026-12-03 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2500"
down_revision: str | None = "2410"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("pacing", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("pacing_live", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("pacing_live")
        batch.drop_column("pacing")

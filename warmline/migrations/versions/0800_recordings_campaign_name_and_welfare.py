"""recordings carry their campaign's name and welfare flag

The recordings package reads these from its own table, so it needs no dialer model (QA picks the
welfare scorecard, lists name the campaign). Existing rows are filled in from their campaign.

Revision ID: 0800
Revises: 0700
Create Date: 2026-12-02 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0800"
down_revision: str | None = "0700"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: SQLite's batch mode would copy and drop the table, and
    # dropping it deletes the QA rows that refer to it (their foreign keys cascade).
    op.add_column("call_recordings", sa.Column("campaign", sa.String(length=64), nullable=True))
    op.add_column(
        "call_recordings", sa.Column("elder_welfare", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.execute(
        "UPDATE call_recordings SET "
        "campaign = (SELECT name FROM campaigns WHERE campaigns.id = call_recordings.campaign_id), "
        "elder_welfare = COALESCE((SELECT elder_welfare FROM campaigns "
        "WHERE campaigns.id = call_recordings.campaign_id), elder_welfare) "
        "WHERE campaign_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("call_recordings", schema=None) as batch_op:
        batch_op.drop_column("elder_welfare")
        batch_op.drop_column("campaign")

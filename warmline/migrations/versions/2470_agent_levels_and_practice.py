"""agent levels and practice calls: agent_profiles.level (trainee, supervised, agent),
campaigns.min_level (the least level an agent needs for a campaign's calls), call_recordings.practice
(a practice call: never sampled as a real call, never in real reports) and practice_calls (one
simulated call from the server to an agent's phone, with its scenario and recording)

Existing agents are ``agent`` (full level), existing campaigns ask for no level: nothing routes
differently until someone sets a level. The downgrade drops the table and the columns.

Revision ID: 2470
Revises: 2460
Create Date: 2026-12-03 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "2470"
down_revision: str | None = "2460"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agent_profiles", sa.Column("level", sa.String(16), nullable=False, server_default="agent"))
    op.add_column("campaigns", sa.Column("min_level", sa.String(16), nullable=True))
    op.add_column(
        "call_recordings", sa.Column("practice", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "practice_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False, index=True),
        sa.Column("scenario", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(128), nullable=False, unique=True),
        sa.Column("recording_id", sa.String(36), index=True),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("started_at", core.db.UTCDateTime(timezone=True), nullable=False, index=True),
        sa.Column("ended_at", core.db.UTCDateTime(timezone=True)),
        sa.Column("result", sa.String(200)),
    )


def downgrade() -> None:
    op.drop_table("practice_calls")
    with op.batch_alter_table("call_recordings") as batch:
        batch.drop_column("practice")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("min_level")
    with op.batch_alter_table("agent_profiles") as batch:
        batch.drop_column("level")

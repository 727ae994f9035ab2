"""agents' wrap-ups on attempts, dispositions per campaign, callbacks assigned to an agent

An attempt keeps the agent who took the call (written when the hand-over connects them) and that
agent's wrap-up: disposition code, note, form answers, the callback's due time. A campaign keeps
its dispositions (NULL: the defaults) and how long a callback waits for its agent. A contact keeps
the agent a callback is promised to, and until when.

Revision ID: 0900
Revises: 0800
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0900"
down_revision: str | None = "0800"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("disposition", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("answers", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("callback_at", core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("wrapped_up_at", core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_attempts_agent_created", ["agent", "created_at"], unique=False)
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispositions", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("callback_grace_minutes", sa.Float(), server_default=sa.text("30"), nullable=False)
        )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assigned_agent", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("assigned_until", core.db.UTCDateTime(timezone=True), nullable=True))
    # Calls agents took before this revision: their agent was noted in the close's detail.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE attempts SET agent = detail ->> 'agent_name' WHERE detail ->> 'agent_name' IS NOT NULL"
        )
    else:
        op.execute(
            "UPDATE attempts SET agent = json_extract(detail, '$.agent_name')"
            " WHERE json_extract(detail, '$.agent_name') IS NOT NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("assigned_until")
        batch_op.drop_column("assigned_agent")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("callback_grace_minutes")
        batch_op.drop_column("dispositions")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_agent_created")
        batch_op.drop_column("wrapped_up_at")
        batch_op.drop_column("callback_at")
        batch_op.drop_column("answers")
        batch_op.drop_column("note")
        batch_op.drop_column("disposition")
        batch_op.drop_column("agent")

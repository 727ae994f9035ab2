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


# Plain ALTER TABLE, no batch mode: on SQLite a batch copy drops and re-creates the table, and with
# foreign keys on, dropping campaigns or contacts would delete every row that cascades from them.


def upgrade() -> None:
    op.add_column("attempts", sa.Column("agent", sa.String(length=64), nullable=True))
    op.add_column("attempts", sa.Column("disposition", sa.String(length=32), nullable=True))
    op.add_column("attempts", sa.Column("note", sa.Text(), nullable=True))
    op.add_column("attempts", sa.Column("answers", sa.JSON(), nullable=True))
    op.add_column("attempts", sa.Column("callback_at", core.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column("attempts", sa.Column("wrapped_up_at", core.db.UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_attempts_agent_created", "attempts", ["agent", "created_at"], unique=False)
    op.add_column("campaigns", sa.Column("dispositions", sa.JSON(), nullable=True))
    op.add_column(
        "campaigns",
        sa.Column("callback_grace_minutes", sa.Float(), server_default=sa.text("30"), nullable=False),
    )
    op.add_column("contacts", sa.Column("assigned_agent", sa.String(length=64), nullable=True))
    op.add_column("contacts", sa.Column("assigned_until", core.db.UTCDateTime(timezone=True), nullable=True))
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
    # SQLite (3.35+) drops a column in place when no index or constraint names it.
    op.drop_column("contacts", "assigned_until")
    op.drop_column("contacts", "assigned_agent")
    op.drop_column("campaigns", "callback_grace_minutes")
    op.drop_column("campaigns", "dispositions")
    op.drop_index("ix_attempts_agent_created", table_name="attempts")
    for column in ("wrapped_up_at", "callback_at", "answers", "note", "disposition", "agent"):
        op.drop_column("attempts", column)

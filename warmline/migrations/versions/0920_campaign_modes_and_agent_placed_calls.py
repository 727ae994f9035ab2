"""campaign modes and agents placing calls: preview reservations, skips, manual dial

A campaign keeps its mode (broadcast, preview, progressive, predictive; existing campaigns are
broadcast: the dialer dials them as before), whether agents may dial a typed number for it, and
the skill and language an agent needs for its agent calls. A contact keeps the agent a preview
has shown it to, and until when. Skipped previews are kept with their reason. An agent's profile
keeps the manual-dial permission (off).

Revision ID: 0920
Revises: 0910
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0920"
down_revision: str | None = "0910"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ALTER TABLE, no batch mode: on SQLite a batch copy drops and re-creates the table, and with
# foreign keys on, dropping campaigns or contacts would delete every row that cascades from them.


def upgrade() -> None:
    op.add_column(
        "campaigns",
        sa.Column("mode", sa.String(length=16), server_default=sa.text("'broadcast'"), nullable=False),
    )
    op.add_column(
        "campaigns", sa.Column("manual_dial", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("campaigns", sa.Column("skill", sa.String(length=64), nullable=True))
    op.add_column("campaigns", sa.Column("language", sa.String(length=35), nullable=True))
    op.add_column("contacts", sa.Column("reserved_by", sa.String(length=64), nullable=True))
    op.add_column("contacts", sa.Column("reserved_until", core.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column(
        "agent_profiles", sa.Column("manual_dial", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_table(
        "preview_skips",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_preview_skips_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_preview_skips_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preview_skips")),
    )
    op.create_index("ix_preview_skips_agent_at", "preview_skips", ["agent", "at"], unique=False)
    op.create_index("ix_preview_skips_contact_id", "preview_skips", ["contact_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_preview_skips_contact_id", table_name="preview_skips")
    op.drop_index("ix_preview_skips_agent_at", table_name="preview_skips")
    op.drop_table("preview_skips")
    # SQLite (3.35+) drops a column in place when no index or constraint names it.
    op.drop_column("agent_profiles", "manual_dial")
    op.drop_column("contacts", "reserved_until")
    op.drop_column("contacts", "reserved_by")
    for column in ("language", "skill", "manual_dial", "mode"):
        op.drop_column("campaigns", column)

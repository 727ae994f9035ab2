"""sip endpoint ids that are not login names; sip_blocks: addresses the SIP guard blocked

Every agent's PJSIP endpoint id becomes random (``ag`` + 12 hex digits), so SIP answers reveal no
user names; softphones fetch their id at sign-in (`/api/agents/me/sip`), so nothing is reissued by
hand. The SIP secrets stay. A downgrade keeps the random ids (they are valid ids either way).

Revision ID: 2300
Revises: 2200
Create Date: 2026-12-02 21:00:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "2300"
down_revision: str | None = "2200"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id FROM sip_accounts")).fetchall()
    for (account_id,) in rows:
        bind.execute(
            sa.text("UPDATE sip_accounts SET endpoint = :endpoint WHERE id = :id"),
            {"endpoint": f"ag{secrets.token_hex(6)}", "id": account_id},
        )
    op.create_table(
        "sip_blocks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(64), nullable=False, unique=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", core.db.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("sip_blocks")

"""sign_in_throttle: failed sign-ins per account and address; api_tokens: last use and CSRF hash

Sign-in throttling must hold across the service's worker processes, so its counts live in the
database. Console sessions gain an idle timeout (``last_used_at``) and a CSRF token bound to the
session (``csrf_hash``); existing tokens keep working (both null: no idle clock yet, no CSRF token
-- a console session without one must sign in again before it can change anything).

Revision ID: 2100
Revises: 2000
Create Date: 2026-12-02 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "2100"
down_revision: str | None = "2000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("scope", "key", name="uq_sign_in_throttle_scope_key"),
    )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("last_used_at", core.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("csrf_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("csrf_hash")
        batch.drop_column("last_used_at")
    op.drop_table("sign_in_throttle")

"""users choose their language

``users.language`` is a BCP 47 tag (``zh-CN``, ``en``) or NULL: no choice made, so the browser's
Accept-Language decides, then zh-CN. Existing users keep NULL and see what they saw before.

Revision ID: 1000
Revises: 0910
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1000"
down_revision: str | None = "0940"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: SQLite's batch mode would copy and drop `users`, and the
    # drop would cascade to the tokens and profiles that refer to it.
    op.add_column("users", sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), for the same reason.
    op.drop_column("users", "language")

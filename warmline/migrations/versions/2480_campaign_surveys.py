"""post-call surveys on campaigns: campaigns.survey (the callee rates the call 1-5 after the agent
hangs up, as on an inbound line) and campaigns.survey_comment_seconds (then a recorded comment this
long at most); call_surveys.comment_recording (the comment's voice message, ivr-<hex>)

Existing campaigns ask for no survey, existing scores have no comment. The downgrade drops the
columns.

Revision ID: 2480
Revises: 2470
Create Date: 2026-12-03 10:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2480"
down_revision: str | None = "2470"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("survey", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("campaigns", sa.Column("survey_comment_seconds", sa.Integer(), nullable=True))
    op.add_column("call_surveys", sa.Column("comment_recording", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_surveys") as batch:
        batch.drop_column("comment_recording")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("survey_comment_seconds")
        batch.drop_column("survey")

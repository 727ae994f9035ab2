"""privacy: campaigns.retention (days and purpose) and audit_notes (the log keeps references)

``campaigns.retention`` is ``{"purpose", "recordings_days"}`` or null (the service's default).
``audit_notes`` holds the free text people wrote (alert and case notes, a preview skip's note):
the audit log kept it forever, in every entry; now an entry keeps ``"note:<id>"`` and the text is
erasable. The notes already in the log are moved out: the append-only triggers are lifted for that
one rewrite and put back (downgrade moves the text back the same way).

Revision ID: 2200
Revises: 2100
Create Date: 2026-12-02 21:00:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "2200"
down_revision: str | None = "2100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (action, the detail key holding free text, the subject the note is about from the target)
NOTED = (
    ("case.close", "note", "case:{target}"),
    ("welfare.alert.acknowledge", "note", "{target}"),
    ("welfare.alert.resolve", "resolution", "{target}"),
    ("preview.skip", "note", "contact:{target}"),
)

audit_log = sa.table(
    "audit_log", sa.column("id", sa.Integer), sa.column("action", sa.String), sa.column("target", sa.String),
    sa.column("detail", sa.JSON), sa.column("at", core.db.UTCDateTime(timezone=True)),
)  # fmt: skip
audit_notes = sa.table(
    "audit_notes", sa.column("id", sa.Integer), sa.column("at", core.db.UTCDateTime(timezone=True)),
    sa.column("subject", sa.String), sa.column("text", sa.Text),
)  # fmt: skip


def _lift_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def _restore_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION warmline_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def _detail(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


def _noted_rows(conn: sa.Connection) -> list[tuple[int, str, str | None, dict[str, Any], Any]]:
    actions = [a for a, _k, _s in NOTED]
    q = sa.select(audit_log.c.id, audit_log.c.action, audit_log.c.target, audit_log.c.detail, audit_log.c.at)
    rows = conn.execute(q.where(audit_log.c.action.in_(actions))).all()
    return [(r.id, r.action, r.target, _detail(r.detail), r.at) for r in rows]


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("retention", sa.JSON(), nullable=True))
    op.create_table(
        "audit_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(128), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_notes_subject", "audit_notes", ["subject"])
    conn = op.get_bind()
    keys = {a: (k, s) for a, k, s in NOTED}
    moved = False
    for rid, action, target, detail, at in _noted_rows(conn):
        key, subject = keys[action]
        text = detail.get(key)
        if not isinstance(text, str) or not text or text.startswith("note:"):
            continue
        if not moved:
            _lift_triggers()
            moved = True
        note_id = conn.execute(
            sa.insert(audit_notes)
            .values(at=at, subject=subject.format(target=target or ""), text=text)
            .returning(audit_notes.c.id)
        ).scalar_one()
        detail[key] = f"note:{note_id}"
        conn.execute(sa.update(audit_log).where(audit_log.c.id == rid).values(detail=detail))
    if moved:
        _restore_triggers()


def downgrade() -> None:
    conn = op.get_bind()
    keys = {a: k for a, k, _s in NOTED}
    texts = {f"note:{r.id}": r.text for r in conn.execute(sa.select(audit_notes.c.id, audit_notes.c.text))}
    lifted = False
    for rid, action, _target, detail, _at in _noted_rows(conn):
        ref = detail.get(keys[action])
        if ref not in texts:
            continue
        if not lifted:
            _lift_triggers()
            lifted = True
        detail[keys[action]] = texts[ref]
        conn.execute(sa.update(audit_log).where(audit_log.c.id == rid).values(detail=detail))
    if lifted:
        _restore_triggers()
    op.drop_index("ix_audit_notes_subject", table_name="audit_notes")
    op.drop_table("audit_notes")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("retention")

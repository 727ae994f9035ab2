"""The append-only audit log: who did what to which record, when.

Rows are only ever inserted; the migration adds triggers that refuse UPDATE and DELETE on both
SQLite and PostgreSQL, so not even a bug in warmline can rewrite history.

Free text a person wrote (a note on an alert, a case's closing words) may hold personal data, and
the log keeps everything forever; so the text goes to ``audit_notes`` and the log keeps only a
reference (``note_ref``: ``"note:17"``). A note is erasable (a citizen's erasure deletes the notes
about their records); the log then still says that something was noted, not what.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditNote(Base):
    """A person's free-text note that an audit entry refers to; deleted when its subject is erased."""

    __tablename__ = "audit_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    subject: Mapped[str | None] = mapped_column(String(128), index=True)  # "alert:5", "case:9"
    text: Mapped[str] = mapped_column(Text)


def note_ref(session: Session, text: str | None, subject: str | None) -> str | None:
    """Keep `text` in audit_notes and return the reference an audit entry stores instead of it."""
    if not text:
        return None
    note = AuditNote(subject=subject, text=text)
    session.add(note)
    session.flush()
    return f"note:{note.id}"


def erase_notes(session: Session, subjects: list[str]) -> int:
    """Delete the notes about these subjects; how many went."""
    if not subjects:
        return 0
    notes = list(session.scalars(select(AuditNote).where(AuditNote.subject.in_(subjects))))
    for note in notes:
        session.delete(note)
    return len(notes)


def audit(session: Session, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
    """Record an action in the caller's transaction: it lands if and only if the action does."""
    session.add(AuditEntry(actor=actor, action=action, target=target, detail=detail))


def recent(session: Session, limit: int = 100) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))

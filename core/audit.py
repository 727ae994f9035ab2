"""The append-only audit log: who did what to which record, when.

Rows are only ever inserted; the migration adds triggers that refuse UPDATE and DELETE on both
SQLite and PostgreSQL, so not even a bug in warmline can rewrite history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, select
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


def audit(session: Session, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
    """Record an action in the caller's transaction: it lands if and only if the action does."""
    session.add(AuditEntry(actor=actor, action=action, target=target, detail=detail))


def recent(session: Session, limit: int = 100) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))

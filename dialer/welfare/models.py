"""The welfare alert table: one row per (contact, kind) escalation, open -> acknowledged -> resolved."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class AlertState(enum.StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class AlertKind(enum.StrEnum):
    unreached = "unreached"  # all attempts used without reaching the elder
    help = "help"  # the elder asked for help (pressed 0 / said so)
    no_input = "no_input"  # answered but never pressed a key
    other = "other"


class Alert(Base):
    __tablename__ = "welfare_alerts"
    __table_args__ = (
        Index("ix_welfare_alerts_state_created", "state", "created_at"),
        # At most one unresolved alert per contact and kind: raising it again is a no-op.
        Index(
            "uq_welfare_alerts_unresolved",
            "contact_id",
            "kind",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="SET NULL"))
    attempt_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[AlertState] = mapped_column(
        Enum(AlertState, native_enum=False, length=16, validate_strings=True), default=AlertState.open
    )
    # What a supervisor may see on the list: a masked number and the contact's name.
    phone_masked: Mapped[str] = mapped_column(String(32), default="")
    contact_name: Mapped[str | None] = mapped_column(String(128))
    campaign_name: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    # Webhook delivery: None = not configured / not yet tried; "delivered" / "failed: ...".
    webhook_status: Mapped[str | None] = mapped_column(String(255))

"""Agents' SIP accounts: one PJSIP endpoint per agent user, provisioned from these rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.auth.models import User
from core.db import Base, utcnow


class SipAccount(Base):
    __tablename__ = "sip_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    endpoint: Mapped[str] = mapped_column(String(64), unique=True)
    # The softphone fetches this at login over the authenticated API; Asterisk gets only its digest.
    secret: Mapped[str] = mapped_column(String(128))
    context: Mapped[str] = mapped_column(String(64), default="agents")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()

"""The post-call survey's answers: a caller's score (1-5) after the agent hung up, linked to the call,
the agent and the inbound line or campaign (read by the workforce reports)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class CallSurvey(Base):
    __tablename__ = "call_surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_ref: Mapped[str] = mapped_column(String(128), unique=True)  # attempt id or inbound channel id
    agent: Mapped[str | None] = mapped_column(String(64), index=True)
    line: Mapped[str | None] = mapped_column(String(64), index=True)  # the inbound line's name
    campaign: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[int]  # 1-5
    # The caller's recorded comment after the score (an IVR voice message, ivr-<hex>; migration 2480).
    comment_recording: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

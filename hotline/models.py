"""The record of every inbound call: the history staffing forecasts are made from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class InboundCallRecord(Base):
    """One inbound call: its line, when it arrived, whether it was queued for an agent, how long the
    caller waited and talked. No phone number is kept here (personal data stays with the callback)."""

    __tablename__ = "inbound_calls"

    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    line: Mapped[str | None] = mapped_column(String(64), index=True)
    arrived_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    queued: Mapped[bool] = mapped_column(default=False)  # offered to agents (a hand-over was tried)
    outcome: Mapped[str] = mapped_column(String(32))
    agent: Mapped[str | None] = mapped_column(String(64))
    wait_s: Mapped[float] = mapped_column(Float, default=0.0)
    talk_s: Mapped[float] = mapped_column(Float, default=0.0)

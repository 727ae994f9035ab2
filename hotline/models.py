"""The hotline's tables: case records (工单) that agents open on inbound calls, and the record of
every inbound call (the history staffing forecasts are made from).

A 12345 call that another department must act on becomes a case: its category, a summary, the
department it is handed to, the date by which someone follows it up, and its status. Supervisors
see every case until it is closed. One case per call (``call_ref`` is unique): saving the call's
form again updates it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # The supervisors' list: open cases, the follow-up due first.
        Index("ix_cases_status_follow_up", "status", "follow_up_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_ref: Mapped[str] = mapped_column(String(128), unique=True)
    line: Mapped[str] = mapped_column(String(64))  # the inbound line's name
    agent: Mapped[str] = mapped_column(String(64))  # who took the call and wrote the case
    category: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(100))
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(32))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the whole form
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))
    close_note: Mapped[str | None] = mapped_column(Text)


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

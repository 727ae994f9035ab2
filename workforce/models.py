"""Workforce tables: the hourly shifts agents pick, and the weeks managers publish."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class ShiftSlot(Base):
    """One agent's hour on one line: picked by the agent, dropped by deleting the row."""

    __tablename__ = "shifts"
    __table_args__ = (UniqueConstraint("agent", "starts_at", name="uq_shifts_agent_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    line: Mapped[str] = mapped_column(String(64), index=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    week: Mapped[str] = mapped_column(String(8))  # ISO week of starts_at, local: 2026-W50
    picked_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShiftWeek(Base):
    """A line's week a manager published: the rota is final; agents may still fill its gaps."""

    __tablename__ = "shift_weeks"
    __table_args__ = (UniqueConstraint("line", "week", name="uq_shift_weeks_line_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line: Mapped[str] = mapped_column(String(64))
    week: Mapped[str] = mapped_column(String(8))
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)

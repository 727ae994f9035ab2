"""The practice calls: one row per simulated call rung to an agent's phone (workforce.practice)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class PracticeCall(Base):
    """A scenario played to an agent from the server: never a citizen, never a real number.

    ``state``: ringing (originated), playing (answered, the scenario runs), done (the scenario
    ended or the agent hung up), failed (Asterisk refused, or the phone did not answer: ``result``
    says). ``recording_id`` is the stereo recording's id (left: the agent, right: the scenario),
    chosen when the call starts and registered when it ends (``call_recordings.practice``)."""

    __tablename__ = "practice_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    scenario: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str] = mapped_column(String(128), unique=True)
    recording_id: Mapped[str | None] = mapped_column(String(36), index=True)
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(String(200))

"""The tables of help in a hard call.

``help_requests``: what an agent asked for on a call -- ``kind`` ``help`` (the help key) or
``abusive`` (the call flagged and ended) -- with the call (``call_ref``), when (``at``) and where
it stands (``state``: ``open`` until a supervisor acts, then ``answered``; ``closed``).
``supervisor_actions``: every listen / whisper / join a supervisor asked for, with the endpoint
their phone rang on, the ARI snoop and bridge that carried it, and how it went (audited as well).
``agent_cooldowns``: a time after a flagged call during which routing offers the agent no call.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class HelpRequest(Base):
    __tablename__ = "help_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    call_ref: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="help")  # help | abusive
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | answered | closed
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    answered_by: Mapped[str | None] = mapped_column(String(64))


class SupervisorAction(Base):
    __tablename__ = "supervisor_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    supervisor: Mapped[str] = mapped_column(String(64), index=True)
    call_ref: Mapped[str] = mapped_column(String(128), index=True)
    agent: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # listen | whisper | join
    endpoint: Mapped[str] = mapped_column(String(100))  # where the supervisor's phone rings
    state: Mapped[str] = mapped_column(String(16), default="requested")  # requested | ringing | failed
    result: Mapped[str | None] = mapped_column(String(200))
    snoop_channel: Mapped[str | None] = mapped_column(String(128))
    bridge_id: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentCooldown(Base):
    __tablename__ = "agent_cooldowns"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    call_ref: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(32))  # abusive | escalated | long_call
    started_at: Mapped[datetime]
    until: Mapped[datetime] = mapped_column(index=True)
    checked_in_by: Mapped[str | None] = mapped_column(String(64))

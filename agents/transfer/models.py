"""The transfers table: one row per transfer or consult an agent asked for, kept whatever became of it.

Who asked (``from_agent``), on which call (``call_ref``: the call's attempt id, or the inbound
channel's id), to what (``kind`` agent / queue / number and ``target``: the colleague's name, the
skill, or the outside number *masked*), how (``mode`` blind / attended), whose phone rang
(``rung_agent``: they may read the transfer), who took the caller in the end (``to_agent``), when
(asked, answered, ended) and how it ended (``state`` and ``result``).

``action`` is the step the agent asked for that the call's process has not taken yet (``start``,
``complete``, ``cancel``): the API writes it in the request, the process that holds the call takes
it (agents.transfer.inbox). ``number`` is the outside number in full, which only that process
reads (to dial it); the API never returns it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_ref: Mapped[str] = mapped_column(String(128), index=True)
    from_agent: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # agent | queue | number
    mode: Mapped[str] = mapped_column(String(16))  # blind | attended
    target: Mapped[str] = mapped_column(String(100))  # colleague, skill, or the number masked
    number: Mapped[str | None] = mapped_column(String(32))  # an outside number in full (or its name)
    rung_agent: Mapped[str | None] = mapped_column(String(64))  # the colleague whose phone rang
    to_agent: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="requested")
    result: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str | None] = mapped_column(String(16), index=True)
    action_at: Mapped[datetime | None]
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

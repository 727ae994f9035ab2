"""Agents' SIP accounts: one PJSIP endpoint per agent user, provisioned from these rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, text
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


class SipBlock(Base):
    """An address the SIP guard (or an administrator) blocked: Asterisk answers it 403, unheard.

    Written into each node's pjsip_blocks.conf as a PJSIP ACL; `until` None: until unblocked."""

    __tablename__ = "sip_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(200))
    failures: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime | None] = mapped_column(default=None)


class AgentProfile(Base):
    """What routing and the work-hour ledger need to know about an agent beyond the account.

    Administered with ``warmline agents set``, the profile API and the console (agents.profiles).
    """

    __tablename__ = "agent_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    daily_target_minutes: Mapped[int] = mapped_column(default=240)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Inbound lines served, by the number's name or its number; empty: every line.
    lines: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # Language tags spoken (zh-CN, yue, en); a call that asks for a language goes to a speaker.
    languages: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # May dial a typed number (in a campaign that allows it); a permission supervisors give.
    manual_dial: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # trainee, supervised or agent (agents.routing.LEVELS): campaigns and lines may ask for at least one.
    level: Mapped[str] = mapped_column(String(16), default="agent", server_default="agent")


class AgentStateChange(Base):
    """One transition of an agent's state: the ledger that work hours are computed from.

    The softphone publishes its state retained on the bus; the same message arrives again after
    every reconnect, so (agent, since, state) is unique and a repeat is ignored.
    """

    __tablename__ = "agent_state_changes"
    __table_args__ = (UniqueConstraint("agent", "since", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(index=True)


class CallQualityReport(Base):
    """A softphone's audio figures for one call (or a moment of it), for remote support."""

    __tablename__ = "call_quality_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    call_ref: Mapped[str] = mapped_column(String(128))
    codec: Mapped[str] = mapped_column(String(32), default="")
    jitter_ms: Mapped[float]
    loss_pct: Mapped[float]
    rtt_ms: Mapped[float]
    mos: Mapped[float]
    final: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column(index=True)

"""Agent states: recording the transitions the softphones publish, and reading the hours back."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from agents.ledger import Totals, Transition, day_bounds, spoken_summary, totals, week_bounds
from agents.models import AgentProfile, AgentStateChange
from core.auth.models import User
from core.messages import AgentState

DEFAULT_TARGET_MINUTES = 240


def record_state(session: Session, msg: AgentState) -> bool:
    """Store one transition; a repeat of the same (agent, since, state) is ignored. True if new."""
    values = {"agent": msg.agent, "state": msg.state, "reason": msg.reason, "since": msg.since}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(AgentStateChange).values(**values).on_conflict_do_nothing().returning(AgentStateChange.id)
    # RETURNING, not rowcount: psycopg reports -1 for a skipped ON CONFLICT row.
    return session.execute(stmt).scalar() is not None


def current_state(session: Session, agent: str) -> AgentStateChange | None:
    stmt = (
        select(AgentStateChange)
        .where(AgentStateChange.agent == agent)
        .order_by(AgentStateChange.since.desc(), AgentStateChange.id.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def transitions(session: Session, agent: str, start: datetime, end: datetime) -> list[Transition]:
    """Transitions within [start, end) plus the one in force at `start`."""
    before = session.scalar(
        select(AgentStateChange)
        .where(AgentStateChange.agent == agent, AgentStateChange.since < start)
        .order_by(AgentStateChange.since.desc())
        .limit(1)
    )
    within = session.scalars(
        select(AgentStateChange)
        .where(AgentStateChange.agent == agent, AgentStateChange.since >= start, AgentStateChange.since < end)
        .order_by(AgentStateChange.since)
    )
    rows = ([before] if before else []) + list(within)
    return [Transition(r.state, r.since) for r in rows]


class HoursReport(BaseModel):
    agent: str
    state: str
    since: datetime | None = None
    today: Totals
    week: Totals
    target_minutes: int
    spoken: str


def target_minutes(session: Session, agent: str) -> int:
    stmt = select(AgentProfile.daily_target_minutes).join(User).where(User.name == agent)
    return session.scalar(stmt) or DEFAULT_TARGET_MINUTES


def hours_report(session: Session, agent: str, now: datetime, tz: ZoneInfo) -> HoursReport:
    local_day = now.astimezone(tz).date()
    day_start, _ = day_bounds(local_day, tz)
    week_start, _ = week_bounds(local_day, tz)
    changes = transitions(session, agent, week_start, now)
    today = totals([t for t in changes], max(day_start, week_start), now)
    week = totals(changes, week_start, now)
    target = target_minutes(session, agent)
    latest = current_state(session, agent)
    return HoursReport(
        agent=agent,
        state=latest.state if latest else "logged_out",
        since=latest.since if latest else None,
        today=today,
        week=week,
        target_minutes=target,
        spoken=spoken_summary(today, target),
    )

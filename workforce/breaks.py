"""Breaks against the allowance: the minutes of ``break`` an agent took in their current shift, of
``break_allowance_minutes`` per shift, and by reason, so breaks are seen to be fair.

The current shift is the one the hours use (:func:`workforce.hours.shifts`): a night shift that
crosses midnight is one shift. With no shift running, the latest shift of the current shift-day.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.ledger import BREAK
from agents.models import AgentStateChange
from agents.states import transitions
from core.auth.models import Role, User
from workforce.hours import HoursRules, Shift, shifts

LOOK_BACK = timedelta(days=2)  # enough for any shift still running
NO_REASON = "none"


@dataclass(frozen=True)
class Breaks:
    agent: str
    taken_min: int = 0
    allowance_min: int = 0
    remaining_min: int = 0
    over: bool = False
    by_reason: dict[str, int] = field(default_factory=dict)  # whole minutes per reason code

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def current_shift(found: list[Shift], now: datetime, rules: HoursRules) -> Shift | None:
    """The running shift, else the latest one of today's shift-day (local date)."""
    if not found:
        return None
    last = found[-1]
    if last.end >= now or last.day(rules.tz) == now.astimezone(rules.tz).date():
        return last
    return None


def _reasons(session: Session, agent: str, shift: Shift) -> dict[float, str]:
    """Each break's reason code by the time it began."""
    rows = session.execute(
        select(AgentStateChange.since, AgentStateChange.reason).where(
            AgentStateChange.agent == agent,
            AgentStateChange.state == BREAK,
            AgentStateChange.since <= shift.end,
            AgentStateChange.since >= shift.start - LOOK_BACK,
        )
    )
    return {since.timestamp(): reason or NO_REASON for since, reason in rows}


def breaks(session: Session, agent: str, rules: HoursRules, allowance_min: float, now: datetime) -> Breaks:
    """The agent's breaks in their current shift against the allowance."""
    found = shifts(transitions(session, agent, now - LOOK_BACK, now), now, rules)
    shift = current_shift(found, now, rules)
    allowance = round(allowance_min)
    if shift is None:
        return Breaks(agent=agent, allowance_min=allowance, remaining_min=allowance)
    reasons = _reasons(session, agent, shift)
    seconds: dict[str, float] = {}
    for start, end, state in shift.spans:
        if state == BREAK:
            reason = reasons.get(start.timestamp(), NO_REASON)
            seconds[reason] = seconds.get(reason, 0.0) + (end - start).total_seconds()
    taken = int(sum(seconds.values()) // 60)
    return Breaks(
        agent=agent,
        taken_min=taken,
        allowance_min=allowance,
        remaining_min=max(0, allowance - taken),
        over=taken > allowance,
        by_reason={reason: int(s // 60) for reason, s in sorted(seconds.items())},
    )


def team_breaks(session: Session, rules: HoursRules, allowance_min: float, now: datetime) -> list[Breaks]:
    """Every active agent's breaks in their current shift, by name: the wallboard's fairness column."""
    names = session.scalars(
        select(User.name).where(User.role == Role.agent, User.disabled.is_(False)).order_by(User.name)
    )
    return [breaks(session, name, rules, allowance_min, now) for name in names]

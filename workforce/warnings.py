"""Early warning before overtime: an alert to supervisors when an agent's shift-day nears the limit.

Raised through the existing alert mechanism (``dialer.welfare``: stored in ``welfare_alerts``,
announced on the bus by the ``welfare-notifier`` worker, listed on the console's alerts page), kind
``overtime_near``, once per agent and shift-day (``attempt_id`` = ``hours:<agent>:<day>``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.ledger import LOGGED_OUT
from agents.models import AgentStateChange
from agents.states import transitions
from core.db import utcnow
from core.features import ServiceContext
from dialer.welfare import events as alert_events
from dialer.welfare.models import Alert
from dialer.welfare.service import raise_alert
from workforce.hours import HoursRules, shifts
from workforce.payroll import rules_from

log = logging.getLogger(__name__)
KIND = "overtime_near"
ACTOR = "workforce"
EVERY_S = 60.0


@dataclass(frozen=True)
class Nearing:
    agent: str
    day: date
    worked_s: float
    limit_s: float


def nearing(
    session: Session, agent: str, rules: HoursRules, warn_before: timedelta, now: datetime
) -> Nearing | None:
    """The agent's current shift-day when its worked time is within `warn_before` of the day limit."""
    changes = transitions(session, agent, now - timedelta(days=2), now)
    found = shifts(changes, now, rules)
    if not found:
        return None
    day = found[-1].day(rules.tz)
    worked = sum(s.worked_s for s in found if s.day(rules.tz) == day)
    limit = rules.day_limit.total_seconds()
    if worked < limit - warn_before.total_seconds():
        return None
    return Nearing(agent, day, worked, limit)


def logged_in_agents(session: Session) -> list[str]:
    """Agents whose latest state is not logged_out."""
    latest = (
        select(AgentStateChange.agent, func.max(AgentStateChange.since).label("since"))
        .group_by(AgentStateChange.agent)
        .subquery()
    )
    stmt = (
        select(AgentStateChange.agent)
        .join(latest, (AgentStateChange.agent == latest.c.agent) & (AgentStateChange.since == latest.c.since))
        .where(AgentStateChange.state != LOGGED_OUT)
    )
    return sorted(set(session.scalars(stmt)))


def warn(session: Session, rules: HoursRules, warn_before: timedelta, now: datetime) -> list[Nearing]:
    """Raise an alert for every logged-in agent nearing overtime not yet warned today; the new ones."""
    raised = []
    for agent in logged_in_agents(session):
        found = nearing(session, agent, rules, warn_before, now)
        if found is None:
            continue
        key = f"hours:{agent}:{found.day.isoformat()}"
        if session.scalar(select(Alert.id).where(Alert.kind == KIND, Alert.attempt_id == key)) is not None:
            continue
        detail = {
            "agent": agent,
            "day": found.day.isoformat(),
            "worked_min": round(found.worked_s / 60),
            "limit_min": round(found.limit_s / 60),
        }
        raise_alert(
            session, campaign=None, contact=None, attempt_id=key, kind=KIND, detail=detail, actor=ACTOR
        )
        raised.append(found)
    return raised


async def serve_warnings(ctx: ServiceContext, now: Callable[[], datetime] = utcnow) -> None:
    """The ``hours-warnings`` worker: checks logged-in agents every minute."""
    rules = rules_from(ctx.settings)
    warn_before = timedelta(minutes=ctx.settings.hours_warn_before_minutes)

    def check() -> list[Nearing]:
        with ctx.db.session() as session:
            return warn(session, rules, warn_before, now())

    while True:
        try:
            if await asyncio.to_thread(check):
                alert_events.wake()
        except Exception:
            log.exception("hours warnings: the check failed; trying again in %.0f s", EVERY_S)
        await asyncio.sleep(EVERY_S)

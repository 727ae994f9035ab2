"""The supervisor's live view of agents: state, time in state, today's talk time, line quality."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.quality import POOR_MOS, latest_per_agent
from agents.states import hours_report
from core.auth.models import Role, User


class AgentRow(BaseModel):
    agent: str
    display_name: str
    state: str
    since: datetime | None
    talking_today_s: int
    logged_in_today_s: int
    mos: float | None
    poor_line: bool


class Wallboard(BaseModel):
    generated_at: datetime
    agents: list[AgentRow]


def wallboard(session: Session, now: datetime, tz: ZoneInfo) -> Wallboard:
    agents = session.scalars(
        select(User).where(User.role == Role.agent, User.disabled.is_(False)).order_by(User.name)
    )
    quality = {q.agent: q.mos for q in latest_per_agent(session)}
    rows = []
    for user in agents:
        report = hours_report(session, user.name, now, tz)
        mos = quality.get(user.name)
        rows.append(
            AgentRow(
                agent=user.name,
                display_name=user.display_name or user.name,
                state=report.state,
                since=report.since,
                talking_today_s=report.today.talking_s,
                logged_in_today_s=report.today.logged_in_s,
                mos=mos,
                poor_line=mos is not None and mos < POOR_MOS,
            )
        )
    return Wallboard(generated_at=now, agents=rows)

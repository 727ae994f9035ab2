"""Early warning before overtime, on SQLite and PostgreSQL, with an injected clock: a stored alert
(the welfare alert mechanism: console and bus), once per agent and shift-day, across midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from agents.states import record_state
from core.db import Database
from core.i18n import use_locale
from core.messages import AgentState
from dialer.welfare.models import Alert
from dialer.welfare.service import summary_text
from workforce.hours import HoursRules
from workforce.warnings import KIND, warn

SH = ZoneInfo("Asia/Shanghai")
RULES = HoursRules(tz=SH)
MARGIN = timedelta(minutes=30)


def state(db: Database, agent: str, at: datetime, name: str) -> None:
    with db.session() as s:
        record_state(s, AgentState(agent=agent, state=name, since=at.astimezone(UTC)))


def alerts(db: Database) -> list[Alert]:
    with db.session() as s:
        return list(s.scalars(select(Alert).where(Alert.kind == KIND)))


def test_a_night_agent_is_warned_once_past_midnight_and_a_logged_out_one_never(db: Database) -> None:
    state(db, "mei", datetime(2026, 11, 3, 20, tzinfo=SH), "available")  # a night shift from 20:00
    state(db, "li", datetime(2026, 11, 3, 8, tzinfo=SH), "available")
    state(db, "li", datetime(2026, 11, 3, 16, 50, tzinfo=SH), "logged_out")  # left at 8 h 50 min
    with db.session() as s:
        assert warn(s, RULES, MARGIN, datetime(2026, 11, 4, 3, 29, tzinfo=SH)) == []  # 7 h 29 min
    with db.session() as s:
        [near] = warn(s, RULES, MARGIN, datetime(2026, 11, 4, 3, 31, tzinfo=SH))  # 7 h 31 min, after midnight
    assert (near.agent, near.day.isoformat(), round(near.worked_s / 60)) == ("mei", "2026-11-03", 451)
    with db.session() as s:
        assert warn(s, RULES, MARGIN, datetime(2026, 11, 4, 3, 45, tzinfo=SH)) == []  # already warned
    [alert] = alerts(db)
    assert alert.detail == {"agent": "mei", "day": "2026-11-03", "worked_min": 451, "limit_min": 480}
    assert summary_text(alert) == "坐席 mei，即将超出工时。"
    with use_locale("en"):
        assert summary_text(alert) == "Agent mei, is near overtime."

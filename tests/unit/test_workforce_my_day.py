"""*My day* on SQLite and PostgreSQL, on a fixed clock: a night shift counted as one shift-day past
midnight, night hours, calls and talk, the 4-hour day's progress, the overtime warning, what the
agent hears (zh-CN and English); the API answers agents only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from agents.states import record_state
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database, utcnow
from core.i18n import use_locale
from core.messages import AgentState
from core.settings import Settings
from ivr.survey import save_score
from tests.utils import PASSWORD, login
from warmline.app import create_app
from workforce.hours import HoursRules
from workforce.my_day import my_day

SH = ZoneInfo("Asia/Shanghai")
RULES = HoursRules(tz=SH)
WARN = timedelta(minutes=30)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=SH)


def states(db: Database, agent: str, *items: tuple[datetime, str]) -> None:
    with db.session() as session:
        for since, state in items:
            record_state(
                session, AgentState(agent=agent, state=state, since=since.astimezone(ZoneInfo("UTC")))
            )


def test_a_night_shift_is_one_day_past_midnight(db: Database) -> None:
    states(
        db, "mei",
        (at(2, 9), "available"), (at(2, 12), "logged_out"),  # the day before: not this shift-day
        (at(3, 20), "available"), (at(3, 21), "on_call"), (at(3, 21, 10), "wrap_up"),
        (at(3, 21, 15), "on_call"), (at(3, 21, 35), "available"), (at(3, 23), "break"),
        (at(3, 23, 30), "available"),
    )  # fmt: skip
    with db.session() as session, use_locale("en"):
        day = my_day(session, "mei", RULES, WARN, at(4, 1, 30))
    # 20:00-01:30 is 5.5 h less a 30-min break = 5 h; night 22:00-01:30 less the break = 3 h.
    assert (day.day.isoformat(), len(day.shifts), day.shifts[0].end) == ("2026-11-03", 1, None)
    assert (day.worked_s, day.night_s, day.calls, day.talk_s) == (5 * 3600, 3 * 3600, 2, 30 * 60)
    assert (day.target_s, day.left_s, day.progress, day.warning) == (4 * 3600, 0, 1.0, None)
    assert day.spoken == (
        "Today you worked 5 h, 3 h of it at night. 2 calls, talk time 30 min. Your 4-hour day is done."
        " Break: 30 of 30 minutes used."
    )
    with db.session() as session:  # zh-CN, everyone's default
        said = my_day(session, "mei", RULES, WARN, at(4, 1, 30)).spoken
    assert "5小时" in said and "2" in said and "Today" not in said


def test_short_day_progress_and_the_overtime_warning(db: Database) -> None:
    states(db, "li", (at(3, 8), "available"), (at(3, 11), "logged_out"))
    states(db, "zhu", (at(3, 8), "available"))
    with db.session() as session, use_locale("en"):
        short = my_day(session, "li", RULES, WARN, at(3, 15))
        near = my_day(session, "zhu", RULES, WARN, at(3, 15, 40))
        over = my_day(session, "zhu", RULES, WARN, at(3, 17, 15))
    assert (short.worked_s, short.left_s, short.progress, short.shifts[0].end) == (
        3 * 3600, 3600, 0.75, "2026-11-03T11:00+08:00",
    )  # fmt: skip
    assert short.spoken.endswith("1 h to your 4-hour day. Break: 0 of 30 minutes used.")
    assert (near.warning, near.overtime_s) == ("near", 0)
    assert near.spoken.endswith("Overtime begins in 20 min. Break: 0 of 30 minutes used.")
    assert (over.warning, over.overtime_s) == ("over", 75 * 60)
    assert over.spoken.endswith("Overtime so far: 1 h 15 min. Break: 0 of 30 minutes used.")


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        auth.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
        auth.create_user(s, "boss", Role.supervisor, PASSWORD, actor="test")
    with TestClient(create_app(settings, db)) as c:
        yield c


def test_the_api_answers_the_agent_about_their_own_day(client: TestClient) -> None:
    resp = client.get("/api/workforce/my-day", headers=login(client, "mei"))
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert (data["agent"], data["worked_s"], data["shifts"], data["target_s"]) == ("mei", 0, [], 4 * 3600)
    assert data["spoken"]
    assert client.get("/api/workforce/my-day", headers=login(client, "boss")).status_code == 403


def test_compliments_reach_the_agent_on_my_day(client: TestClient, settings: Settings, db: Database) -> None:
    """Callers' top scores today are on the agent's My day and spoken (zh-CN, the default); a lower
    score, another agent's, or yesterday's is not; the threshold is a setting."""
    now = utcnow()
    with db.session() as s:
        save_score(s, call_ref="a-1", score=5, agent="mei", campaign="flu", now=now)
        save_score(s, call_ref="in-1", score=5, agent="mei", line="community-hotline", now=now)
        save_score(s, call_ref="in-2", score=4, agent="mei", line="community-hotline", now=now)
        save_score(s, call_ref="in-3", score=5, agent="lin", line="community-hotline", now=now)
        save_score(
            s, call_ref="in-0", score=5, agent="mei", line="community-hotline", now=now - timedelta(days=2)
        )
    data = client.get("/api/workforce/my-day", headers=login(client, "mei")).json()
    assert data["compliments"] == 2 and data["latest_compliment_at"]
    assert "今天有2位来电者给您的服务打了好评，谢谢您！" in data["spoken"]
    settings.survey_compliment_score = 4
    assert client.get("/api/workforce/my-day", headers=login(client, "mei")).json()["compliments"] == 3


def test_no_compliment_is_not_mentioned(db: Database) -> None:
    with db.session() as session, use_locale("en"):
        day = my_day(session, "mei", RULES, WARN, at(3, 15))
    assert (day.compliments, day.latest_compliment_at) == (0, None)
    assert "praised" not in day.spoken

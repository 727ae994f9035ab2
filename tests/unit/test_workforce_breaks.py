"""Breaks against the allowance on SQLite and PostgreSQL, on a fixed clock: a night shift crossing
midnight is one shift, minutes by reason code, over the allowance; the agent's API and My day's
sentence (zh-CN and English)."""

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
from tests.utils import PASSWORD, login
from warmline.app import create_app
from workforce.breaks import breaks
from workforce.hours import HoursRules
from workforce.my_day import my_day

SH = ZoneInfo("Asia/Shanghai")
RULES = HoursRules(tz=SH)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=SH)


def states(db: Database, agent: str, *items: tuple[datetime, str, str | None]) -> None:
    with db.session() as session:
        for since, state, reason in items:
            record_state(
                session,
                AgentState(agent=agent, state=state, reason=reason, since=since.astimezone(ZoneInfo("UTC"))),
            )


def test_a_night_shift_across_midnight_counts_its_breaks_as_one_shift(db: Database) -> None:
    states(
        db, "mei",
        (at(2, 9), "available", None), (at(2, 10), "break", "meal"),  # an earlier shift: not counted
        (at(2, 11), "logged_out", None),
        (at(3, 20), "available", None), (at(3, 23, 50), "break", "rest"),
        (at(4, 0, 10), "available", None), (at(4, 2), "break", "meal"), (at(4, 2, 25), "available", None),
    )  # fmt: skip
    with db.session() as session:
        took = breaks(session, "mei", RULES, 30, at(4, 3))
    assert (took.taken_min, took.allowance_min, took.remaining_min, took.over) == (45, 30, 0, True)
    assert took.by_reason == {"meal": 25, "rest": 20}


def test_a_running_break_counts_and_no_shift_has_the_whole_allowance(db: Database) -> None:
    states(db, "li", (at(3, 8), "available", None), (at(3, 9), "break", None))
    with db.session() as session:
        running = breaks(session, "li", RULES, 30, at(3, 9, 12))
        nobody = breaks(session, "zhu", RULES, 30, at(3, 9, 12))
    assert (running.taken_min, running.remaining_min, running.over, running.by_reason) == (
        12,
        18,
        False,
        {"none": 12},
    )
    assert (nobody.taken_min, nobody.remaining_min, nobody.by_reason) == (0, 30, {})


def test_my_day_says_the_breaks_used(db: Database) -> None:
    states(
        db,
        "li",
        (at(3, 8), "available", None),
        (at(3, 9), "break", "rest"),
        (at(3, 9, 12), "available", None),
    )
    with db.session() as session:
        with use_locale("en"):
            day = my_day(session, "li", RULES, timedelta(minutes=30), at(3, 10))
        said = my_day(session, "li", RULES, timedelta(minutes=30), at(3, 10)).spoken
    assert (day.break_taken_min, day.break_allowance_min) == (12, 30)
    assert "Break: 12 of 30 minutes used." in day.spoken
    assert "休息已用12分钟，共30分钟。" in said


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    settings.break_allowance_minutes = 20
    with db.session() as s:
        auth.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
        auth.create_user(s, "boss", Role.supervisor, PASSWORD, actor="test")
    with TestClient(create_app(settings, db)) as c:
        yield c


def test_the_api_answers_the_agent_about_their_breaks(client: TestClient, db: Database) -> None:
    now = utcnow()
    states(
        db,
        "mei",
        (now - timedelta(hours=1), "available", None),
        (now - timedelta(minutes=25), "break", "meal"),
    )
    resp = client.get("/api/agents/me/breaks", headers=login(client, "mei"))
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert (data["agent"], data["allowance_min"], data["remaining_min"], data["over"]) == ("mei", 20, 0, True)
    assert data["taken_min"] >= 25 and data["by_reason"]["meal"] == data["taken_min"]
    assert client.get("/api/agents/me/breaks", headers=login(client, "boss")).status_code == 403
    day = client.get("/api/workforce/my-day", headers=login(client, "mei")).json()
    assert day["break_allowance_min"] == 20


def test_supervisors_see_every_agents_breaks_and_who_is_over(client: TestClient, db: Database) -> None:
    now = utcnow()
    with db.session() as s:
        auth.create_user(s, "lin", Role.agent, PASSWORD, actor="test")
    states(
        db,
        "mei",
        (now - timedelta(hours=1), "available", None),
        (now - timedelta(minutes=25), "break", "meal"),
    )
    boss = login(client, "boss")
    resp = client.get("/api/workforce/breaks", headers=boss)
    assert resp.status_code == 200, resp.text
    rows = {row["agent"]: row for row in resp.json()["agents"]}
    assert resp.json()["allowance_min"] == 20
    assert (rows["mei"]["over"], rows["lin"]["taken_min"], rows["lin"]["over"]) == (True, 0, False)
    assert client.get("/api/workforce/breaks", headers=login(client, "mei")).status_code == 403
    page = client.get("/console/wallboard", headers=boss)
    assert page.status_code == 200 and "本班休息" in page.text
    assert (
        "Breaks this shift" in client.get("/console/wallboard", headers=boss | {"Accept-Language": "en"}).text
    )

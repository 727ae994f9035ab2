"""Shifts on SQLite and PostgreSQL: the hours a line's forecast needs, agents picking open hours
(API and CLI), the gaps, publishing the week, drops after publishing only by a supervisor; audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents.profiles import update_profile
from core.audit import AuditEntry
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from hotline.models import InboundCallRecord
from tests.utils import PASSWORD, login
from tests.utils.cli import CliRunner, ok
from warmline.app import create_app
from warmline.cli import app

SH = ZoneInfo("Asia/Shanghai")
WEEK = "2030-W10"  # Monday 2030-03-04: in the future of any clock these tests meet
MONDAY = datetime(2030, 3, 4, tzinfo=SH)


def seed(db: Database, monday: datetime = MONDAY) -> None:
    """The four weeks before: Monday 09:00-09:30, 4 queued calls of 900 s (2 erlangs, 4 agents for 80%
    in 20 s, as `warmline staffing erlang --calls 4 --aht 900` says);
    Tuesday 14:30-15:00, 1 call of 360 s (0.2 erlangs, 1 agent)."""
    with db.session() as session:
        for week in range(1, 5):
            base = monday - timedelta(weeks=week)
            calls = [(base + timedelta(hours=9, minutes=i), 900.0) for i in range(4)]
            calls.append((base + timedelta(days=1, hours=14, minutes=40), 360.0))
            for i, (at, talk) in enumerate(calls):
                session.add(
                    InboundCallRecord(
                        channel_id=f"c{week}-{i}", number="12345", line="community-hotline",
                        arrived_at=at, ended_at=at, queued=True, outcome="agent", agent="zhu",
                        wait_s=3.0, talk_s=talk,
                    )
                )  # fmt: skip


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        for name, role in (("boss", Role.supervisor), ("mei", Role.agent), ("li", Role.agent)):
            auth.create_user(s, name, role, PASSWORD, actor="test")
        auth.create_user(s, "fang", Role.agent, PASSWORD, actor="test")
        update_profile(s, "fang", actor="test", lines=["elder-line"])
    seed(db)
    with TestClient(create_app(settings, db)) as c:
        yield c


def message(resp: object) -> str:
    return str(resp.json()["detail"]["message"])  # type: ignore[attr-defined]


MON_9 = "2030-03-04T09:00"
TUE_14 = "2030-03-05T14:00"


def test_agents_pick_open_hours_and_the_manager_publishes_the_week(client: TestClient, db: Database) -> None:
    mei, li, boss = (login(client, n) for n in ("mei", "li", "boss"))
    params = {"line": "community-hotline", "week": WEEK}
    got = client.get("/api/workforce/shifts", params=params, headers=mei)
    assert got.status_code == 200, got.text
    rota = got.json()
    assert [(h["start"], h["needed"], h["open"]) for h in rota["hours"]] == [
        ("2030-03-04T09:00:00+08:00", 4, 4),
        ("2030-03-05T14:00:00+08:00", 1, 1),
    ]
    assert (rota["needed"], rota["gaps"], rota["published"]) == (5, 5, False)

    body = {"line": "community-hotline", "start": MON_9}
    resp = client.post("/api/workforce/shifts/pick", json=body, headers=mei)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["picked"], resp.json()["open"], resp.json()["mine"]) == (1, 3, True)
    again = client.post("/api/workforce/shifts/pick", json=body, headers=mei)
    assert again.status_code == 409 and "2030-03-04 09:00" in message(again)
    assert (
        client.post("/api/workforce/shifts/pick", json=body | {"start": TUE_14}, headers=li).status_code
        == 200
    )
    full = client.post("/api/workforce/shifts/pick", json=body | {"start": TUE_14}, headers=mei)
    assert full.status_code == 409  # the one place is li's

    # An agent sees counts and their own hours, not colleagues' names; the supervisor sees who.
    seen = client.get("/api/workforce/shifts", params=params, headers=li).json()["hours"]
    assert [(h["picked"], h["mine"], "agents" in h) for h in seen] == [(1, False, False), (1, True, False)]
    planner = client.get("/api/workforce/shifts", params=params, headers=boss).json()
    assert [h["agents"] for h in planner["hours"]] == [["mei"], ["li"]]
    assert planner["gaps"] == 3

    assert client.post("/api/workforce/shifts/publish", json={**params}, headers=mei).status_code == 403
    published = client.post("/api/workforce/shifts/publish", json=params, headers=boss)
    assert published.status_code == 200 and published.json()["published_by"] == "boss"
    assert client.post("/api/workforce/shifts/publish", json=params, headers=boss).status_code == 409

    # Published: the agent may still fill a gap, but not drop; the supervisor may drop.
    assert client.post("/api/workforce/shifts/drop", json=body, headers=mei).status_code == 403
    assert client.post("/api/workforce/shifts/pick", json=body, headers=li).status_code == 200
    dropped = client.post("/api/workforce/shifts/drop", json=body | {"agent": "mei"}, headers=boss)
    assert dropped.status_code == 200, dropped.text
    with db.session() as s:
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action.like("shift.%")).order_by(AuditEntry.id)
        )
        assert [(e.actor, e.action, e.target) for e in entries] == [
            ("mei", "shift.pick", "mei"),
            ("li", "shift.pick", "li"),
            ("boss", "shift.publish", "community-hotline:2030-W10"),
            ("li", "shift.pick", "li"),
            ("boss", "shift.drop", "mei"),
        ]


def test_bad_picks_say_what_and_where(client: TestClient) -> None:
    mei = login(client, "mei")
    base = {"line": "community-hotline", "start": MON_9}
    cases = [
        ({"start": "Monday 9"}, 422, "Monday 9"),
        ({"start": "2030-03-04T09:30"}, 422, "09:00"),
        ({"start": "2030-03-04T11:00"}, 409, "2030-03-04 11:00"),  # not needed by the forecast
        ({"start": "2020-01-06T09:00"}, 409, "2020-01-06 09:00"),  # already begun
        ({"line": "no-such-line"}, 404, "no-such-line"),
        ({"agent": "li"}, 403, ""),  # agents pick for themselves only
    ]
    for change, code, named in cases:
        resp = client.post("/api/workforce/shifts/pick", json=base | change, headers=mei)
        assert resp.status_code == code, (change, resp.text)
        assert named in message(resp), resp.text
    fang = client.post("/api/workforce/shifts/pick", json=base, headers=login(client, "fang"))
    assert fang.status_code == 403 and "elder-line" in message(fang)
    none = client.post("/api/workforce/shifts/drop", json=base, headers=mei)
    assert none.status_code == 404


def test_the_shifts_commands(cli: CliRunner, db: Database) -> None:
    with db.session() as s:
        auth.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
    seed(db)
    line = ["--line", "community-hotline"]
    ok(cli, "shifts", "pick", *line, "--agent", "mei", "--start", MON_9)
    shown = json.loads(ok(cli, "shifts", "show", *line, "--week", WEEK, "--json").stdout)
    assert [(h["needed"], h["agents"]) for h in shown["hours"]] == [(4, ["mei"]), (1, [])]
    published = json.loads(ok(cli, "shifts", "publish", *line, "--week", WEEK, "--json").stdout)
    assert (published["published_by"], published["gaps"]) == ("cli", 4)
    ok(cli, "shifts", "drop", *line, "--agent", "mei", "--start", MON_9)
    bad = cli.invoke(app, ["shifts", "pick", *line, "--agent", "mei", "--start", "2030-03-04T09:15"])
    assert bad.exit_code == 2 and "--start" not in bad.output and "09:15" in bad.output

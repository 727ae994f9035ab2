"""Reports on SQLite and PostgreSQL from a seeded day, against hand-computed figures: per line (the
elder line without speed figures or targets), per agent and for the team, resolution from
dispositions and case records, satisfaction from the post-call survey, hours from the ledger; the
command and the API (JSON and CSV), and agents may not read them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from agents.states import record_state
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.messages import AgentState
from core.settings import Settings
from hotline.config import InboundConfig, InboundNumber
from hotline.models import Case, InboundCallRecord
from ivr.models import CallSurvey
from tests.unit.test_wrapup import PHONE, T0, hang_up, make, taken, wrap
from tests.utils import PASSWORD, login
from tests.utils.cli import CliRunner, ok
from warmline.app import create_app
from workforce.hours import HoursRules
from workforce.reports import report

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2024, 11, 4)  # T0 is 10:00 that Monday
CONFIG = InboundConfig(
    numbers={
        "12345": InboundNumber(name="community-hotline"),
        "12349": InboundNumber(name="elder-line", max_occupancy=0.7),
    }
)
LATER = datetime(2024, 12, 1, tzinfo=SH)


def seed(db: Database) -> None:
    """community-hotline: mei answers after 10 s (100 s talk) and 5 s (300 s), li after 30 s (200 s),
    one caller hangs up after 40 s; elder-line: mei answers after 60 and 90 s (600 s each). Cases:
    mei's closed on the call, li's handed off. Surveys: mei 4, li 5. Campaign: mei wraps up one call
    confirmed (done) and one as a callback. Ledger: mei 09:00-13:00, a 30-min break."""
    calls = [
        ("a", "community-hotline", "mei", 10, 100), ("b", "community-hotline", "li", 30, 200),
        ("c", "community-hotline", None, 40, 0), ("d", "community-hotline", "mei", 5, 300),
        ("e", "elder-line", "mei", 60, 600), ("f", "elder-line", "mei", 90, 600),
    ]  # fmt: skip
    with db.session() as s:
        for i, (ref, line, agent, wait, talk) in enumerate(calls):
            at = T0 + timedelta(minutes=10 * i)
            s.add(
                InboundCallRecord(
                    channel_id=ref, number="12345", line=line, arrived_at=at, ended_at=at, queued=True,
                    outcome="agent" if agent else "abandoned", agent=agent, wait_s=wait, talk_s=talk,
                )
            )  # fmt: skip
        for ref, agent, status in (("a", "mei", "closed"), ("b", "li", "handed_off")):
            s.add(
                Case(
                    call_ref=ref, line="community-hotline", agent=agent, category="consult",
                    summary="路灯", status=status, answers={}, created_at=T0,
                )
            )  # fmt: skip
        for ref, agent, score in (("a", "mei", 4), ("b", "li", 5)):
            s.add(
                CallSurvey(call_ref=ref, agent=agent, line="community-hotline", score=score, answered_at=T0)
            )
        for hh, mm, state in (
            (9, 0, "available"),
            (11, 0, "break"),
            (11, 30, "available"),
            (13, 0, "logged_out"),
        ):
            since = datetime(2024, 11, 4, hh, mm, tzinfo=SH).astimezone(ZoneInfo("UTC"))
            record_state(s, AgentState(agent="mei", state=state, since=since))
    make(db, phones=(PHONE, "+8613800000002"))
    first = taken(db)
    hang_up(db, first, T0 + timedelta(minutes=3))
    wrap(db, first, "confirmed", T0 + timedelta(minutes=4))
    second = taken(db)
    hang_up(db, second, T0 + timedelta(minutes=8))
    wrap(db, second, "callback", T0 + timedelta(minutes=9), callback_at=LATER)


def rows(db: Database, group: str, by: str = "day") -> dict[str, dict]:  # type: ignore[type-arg]
    with db.session() as s:
        data = report(s, CONFIG, DAY, DAY, by=by, group=group, rules=HoursRules(tz=SH), now=LATER)  # type: ignore[arg-type]
    return {r["name"]: r for r in data["rows"]}


def test_per_line_with_the_elder_line_free_of_speed_targets(db: Database) -> None:
    seed(db)
    lines = rows(db, "line")
    hot = lines["community-hotline"]
    assert (hot["period"], hot["offered"], hot["answered"]) == ("2024-11-04", 4, 3)
    assert (hot["service_level"], hot["asa_s"], hot["abandon"], hot["aht_s"]) == (0.5, 15.0, 0.25, 200.0)
    assert (hot["resolution"], hot["satisfaction"], hot["surveys"]) == (0.5, 4.5, 2)
    assert hot["met"] == {"service_level": False, "asa_s": True, "resolution": False, "satisfaction": False}
    elder = lines["elder-line"]
    assert (elder["service_level"], elder["asa_s"], elder["aht_s"]) == (None, None, 600.0)
    assert elder["targets"]["service_level"] is None and elder["targets"]["answer_within_s"] is None
    assert "service_level" not in elder["met"] and "asa_s" not in elder["met"]


def test_per_agent_and_team_with_dispositions_and_hours(db: Database) -> None:
    seed(db)
    agents = rows(db, "agent")
    mei = agents["mei"]
    # inbound: a, d (speed lines, within 20 s) and e, f (elder); campaign: confirmed (done) + callback.
    assert (mei["offered"], mei["answered"], mei["service_level"], mei["asa_s"]) == (4, 4, 1.0, 7.5)
    assert (mei["resolution"], mei["satisfaction"], mei["hours"]) == (round(2 / 3, 4), 4.0, 3.5)
    assert (agents["li"]["resolution"], agents["li"]["hours"]) == (0.0, 0.0)
    team = rows(db, "team", by="week")["team"]
    assert (team["period"], team["offered"], team["answered"], team["abandon"]) == (
        "2024-W45",
        6,
        5,
        round(1 / 6, 4),
    )
    assert (team["resolution"], team["hours"]) == (0.5, 3.5)


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        for name, role in (("boss", Role.supervisor), ("zhu", Role.agent)):
            auth.create_user(s, name, role, PASSWORD, actor="test")
    with TestClient(create_app(settings, db)) as c:
        yield c


def test_the_api_and_the_command(client: TestClient, db: Database, cli: CliRunner, tmp_path: Path) -> None:
    seed(db)
    query = {"from": "2024-11-04", "to": "2024-11-04", "group": "line"}
    assert client.get("/api/workforce/reports", params=query, headers=login(client, "zhu")).status_code == 403
    boss = login(client, "boss")
    data = client.get("/api/workforce/reports", params=query, headers=boss).json()
    assert {r["name"] for r in data["rows"]} == {"community-hotline", "elder-line"}
    resp = client.get("/api/workforce/reports", params=query | {"format": "csv"}, headers=boss)
    assert (
        resp.status_code == 200
        and "report-line-day-2024-11-04-2024-11-04.csv" in resp.headers["content-disposition"]
    )
    table = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert {r["name"]: r["service_level"] for r in table}["community-hotline"] == "0.5"
    backwards = query | {"from": "2024-11-05"}
    assert client.get("/api/workforce/reports", params=backwards, headers=boss).status_code == 422
    out = tmp_path / "r.csv"
    shown = json.loads(
        ok(cli, "workforce", "report", "--from", "2024-11-04", "--to", "2024-11-04", "--group", "agent",
           "--output", str(out), "--json").stdout
    )  # fmt: skip
    assert {r["name"] for r in shown["rows"]} == {"mei", "li"}
    assert out.read_bytes().startswith(b"\xef\xbb\xbfgroup,name,period")


def test_the_team_table_per_agent_calls_talk_satisfaction_and_rests(db: Database) -> None:
    """Per agent over the period: inbound calls answered and campaign calls taken, their talk, the
    mean survey score, and the cool-downs started (agents.help); another day's rest is left out."""
    from agents.help.service import start_cooldown
    from dialer.models import Attempt
    from workforce.reports import team_table

    seed(db)
    with db.session() as s:
        start_cooldown(s, "mei", "abusive", T0, 5)
        start_cooldown(s, "mei", "long_call", T0 + timedelta(hours=1), 5)
        start_cooldown(s, "li", "escalated", T0 + timedelta(days=2), 5)  # outside the day
        campaign_talk = sum(
            (a.ended_at - a.answered_at).total_seconds()
            for a in s.query(Attempt).filter(Attempt.agent == "mei")
            if a.ended_at is not None and a.answered_at is not None
        )
        team = {row["agent"]: row for row in team_table(s, CONFIG, DAY, DAY)}
    assert team["mei"] == {
        "agent": "mei", "calls": 6, "talk_s": round(1600 + campaign_talk), "satisfaction": 4.0, "surveys": 1,
        "cooldowns": 2,
    }  # fmt: skip
    assert team["li"] == {
        "agent": "li",
        "calls": 1,
        "talk_s": 200,
        "satisfaction": 5.0,
        "surveys": 1,
        "cooldowns": 0,
    }
    with db.session() as s:
        later = {
            row["agent"]: row["cooldowns"] for row in team_table(s, CONFIG, DAY, DAY + timedelta(days=3))
        }
    assert later == {"mei": 2, "li": 1}

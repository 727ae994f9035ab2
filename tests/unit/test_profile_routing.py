"""Routing uses agents' profiles: lines and languages, a queue where a caller behind takes an
agent nobody ahead could, and a skill nobody has reported when a campaign or a line starts, not
found by a waiting caller (CLI, API, console, the hotline's check) -- on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents import profiles
from agents.handover import SkillQueues
from agents.routing import (
    AgentCandidate,
    Need,
    choose_agent,
    language_matches,
    reserve_agent,
    set_state,
    unmet,
)
from core.audit import AuditEntry
from core.auth import service
from core.auth.models import Role, User
from core.db import Database
from core.features import ServiceContext
from core.settings import Settings
from hotline.staffing import check_lines, log_unstaffed
from tests.utils import PASSWORD, console_login, login
from tests.utils.agents import make_agents
from tests.utils.cli import CliRunner, cli_runner
from warmline.app import create_app
from warmline.cli import app

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

# A campaign flow whose 0 goes to Cantonese-speaking welfare agents, and 1 to anyone.
CANTONESE_FLOW = """\
name: notice_yue
start: menu
nodes:
  menu:
    type: gather
    prompt: "有事请按零。"
    on: {"0": agent, "1": helper}
    no_input: bye
    invalid: bye
  agent: {type: transfer, skill: elder_yue, language: yue}
  helper: {type: transfer, skill: any}
  bye: {type: hangup}
"""
INBOUND = """\
timezone: Asia/Shanghai
numbers:
  "12345": {name: community-hotline, flow: hotline_menu, after_hours_flow: after_hours}
  "96100": {name: elder-line, flow: notice_yue, after_hours_flow: null, language: yue}
"""


def cand(name: str, *, skills: tuple[str, ...] = ("welfare",), lines: tuple[str, ...] = (),
         languages: tuple[str, ...] = (), idle_min: int = 10) -> AgentCandidate:  # fmt: skip
    return AgentCandidate(
        name,
        name,
        skills,
        "available",
        None,
        NOW - timedelta(minutes=idle_min),
        lines=lines,
        languages=languages,
    )


# ------------------------------------------------------------------------------ the pure choice


def test_lines_limit_inbound_calls_only() -> None:
    anywhere = cand("anywhere", idle_min=5)
    hotline = cand("hotline", lines=("community-hotline",), idle_min=50)
    elder = cand("elder", lines=("96100",), idle_min=60)
    rows = [anywhere, hotline, elder]
    line_12345 = ("community-hotline", "12345")
    assert choose_agent(rows, "welfare", line=line_12345) == hotline, (
        "elder does not serve it; hotline idles longer"
    )
    assert choose_agent(rows, "welfare", line=("elder-line", "96100")) == elder, "a line named by its number"
    assert choose_agent(rows, "welfare", line=("Community-Hotline",)) == hotline, "letter case aside"
    assert choose_agent(rows, "welfare", line=("general-line",)) == anywhere, "no lines listed: every line"
    assert choose_agent(rows, "welfare") == elder, "an outbound call has no line: anyone, longest idle"


def test_a_call_that_asks_for_a_language_goes_to_a_speaker() -> None:
    assert language_matches("yue", "YUE") and language_matches("zh", "zh-CN")
    assert not language_matches("zh-CN", "zh") and not language_matches("zh-CN", "zh-HK")
    mandarin = cand("mandarin", languages=("zh-CN",), idle_min=60)
    cantonese = cand("cantonese", languages=("zh-CN", "yue"), idle_min=5)
    silent = cand("silent", idle_min=90)  # lists no language
    rows = [mandarin, cantonese, silent]
    assert choose_agent(rows, "welfare", language="yue") == cantonese
    assert choose_agent(rows, "welfare", language="zh") == mandarin, "zh is met by zh-CN; longest idle"
    assert choose_agent(rows, "welfare", language="en") is None
    assert choose_agent(rows, "welfare") == silent, "a call that asks for no language: anyone"


def test_behind_in_the_queue_a_call_takes_only_an_agent_nobody_ahead_could() -> None:
    hotline = cand("hotline", lines=("12345",), idle_min=60)
    anywhere = cand("anywhere", idle_min=5)
    ahead = [Need("welfare", ("12345",))]
    assert choose_agent([hotline, anywhere], "welfare", line=("96100",), ahead=ahead) is None, (
        "anywhere could take the caller ahead, who waited longer"
    )
    assert choose_agent([hotline], "welfare", line=("96100",), ahead=ahead) is None
    elder = cand("elder", lines=("96100",), idle_min=1)
    assert choose_agent([hotline, anywhere, elder], "welfare", line=("96100",), ahead=ahead) == elder


def test_queues_remember_what_each_waiting_call_asks() -> None:
    q = SkillQueues()
    q.join("welfare", "c1", need=Need("welfare", ("12345",)))
    q.join("welfare", "c2", need=Need("welfare", ("96100",), "yue"))
    q.join("welfare", "c3")
    assert q.ahead("welfare", "c1") == [] and q.ahead("welfare", "gone") == []
    assert q.ahead("welfare", "c3") == [Need("welfare", ("12345",)), Need("welfare", ("96100",), "yue")]
    q.leave("welfare", "c1")
    assert q.ahead("welfare", "c2") == []


# ------------------------------------------------------------------------------ on the database


def give(db: Database, name: str, **fields: list[str]) -> None:
    with db.session() as s:
        profiles.update_profile(s, name, actor="test", **fields)  # type: ignore[arg-type]


def test_reservation_reads_lines_and_languages_from_profiles(db: Database) -> None:
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"], "wong": ["welfare"]})
    give(db, "mei", lines=["community-hotline"])
    give(db, "wong", languages=["yue", "zh-CN"])
    with db.session() as s:
        for i, name in enumerate(("mei", "lin", "wong")):
            set_state(s, name, "available", "login", since=NOW - timedelta(minutes=30 - i))
    with db.session() as s:
        chosen = reserve_agent(s, "welfare", now=NOW, line=("elder-line", "96100"), language="yue")
        assert chosen is not None and chosen.agent == "wong" and chosen.languages == ("yue", "zh-CN")
        chosen = reserve_agent(s, "welfare", now=NOW, line=("elder-line", "96100"))
        assert chosen is not None and chosen.agent == "lin", "mei serves only community-hotline"
        assert reserve_agent(s, "welfare", now=NOW, line=("elder-line",), language="yue") is None


def test_unmet_needs_say_why(db: Database) -> None:
    with db.session() as s:
        [nobody] = unmet(s, [Need()])
        assert str(nobody) == "any agent: there is no enabled agent at all"
    make_agents(db, {"mei": ["welfare"], "lin": ["vaccination"], "gone": ["elder_yue"]})
    give(db, "mei", lines=["12345"], languages=["zh-CN"])
    with db.session() as s:
        gone = s.scalar(select(User).where(User.name == "gone"))
        assert gone is not None
        gone.disabled = True
    with db.session() as s:
        gaps = unmet(
            s,
            [
                Need("welfare"),  # mei: met, whatever her state
                Need("elder_yue"),  # only a disabled agent has it
                Need("welfare", ("elder-line", "96100")),
                Need("welfare", ("12345",), "yue"),
                Need(None, ("12345",), "en"),
                Need("elder_yue"),  # asked twice, said once
            ],
        )
    assert [str(g) for g in gaps] == [
        "an agent with skill 'elder_yue': no enabled agent has skill 'elder_yue'",
        "an agent with skill 'welfare' on line 'elder-line': the agents with skill 'welfare' (mei) "
        "do not serve line 'elder-line'",
        "an agent with skill 'welfare' on line '12345' who speaks 'yue': "
        "none of the agents who could take it (mei) speaks 'yue'",
        "any agent on line '12345' who speaks 'en': none of the agents who could take it (lin, mei) speaks 'en'",
    ]


# ------------------------------------------------------------------------------ starting a campaign


@pytest.fixture
def flows(settings: Settings) -> Settings:
    folder = settings.var_dir / "flows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notice_yue.yaml").write_text(CANTONESE_FLOW, encoding="utf-8")
    inbound = settings.var_dir / "inbound.yaml"
    inbound.write_text(INBOUND, encoding="utf-8")
    settings.inbound_config = inbound
    return settings


@pytest.fixture
def cli(db_url: str, flows: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    env = {"WARMLINE_INBOUND_CONFIG": str(flows.inbound_config)}
    with cli_runner(monkeypatch, flows.var_dir, db_url, **env) as runner:
        yield runner


def unstaffed(db: Database) -> list[AuditEntry]:
    with db.session() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "campaign.unstaffed")))
        s.expunge_all()
        return rows


def test_campaign_start_names_the_skill_nobody_has_and_still_starts(cli: CliRunner, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"]})
    assert (
        cli.invoke(
            app, ["campaign", "create", "notice", "--kind", "broadcast", "--flow", "notice_yue"]
        ).exit_code
        == 0
    )
    started = cli.invoke(app, ["campaign", "start", "notice"])
    assert started.exit_code == 0 and started.stdout == "campaign notice: running\n"
    assert started.stderr.startswith(
        "warning: campaign 'notice' puts calls through to an agent with skill 'elder_yue' who speaks 'yue', "
        "but no enabled agent has skill 'elder_yue'"
    )
    assert started.stderr.count("warning:") == 1, "the 'any' transfer: mei can take it"
    [entry] = unstaffed(db)
    assert (entry.actor, entry.target, entry.detail["missing_skills"]) == ("cli", "notice", ["elder_yue"])
    assert cli.invoke(app, ["campaign", "pause", "notice"]).stderr == "", "pausing checks nothing"
    # The skill is given, but to someone who speaks only Mandarin: the language is what is missing.
    assert (
        cli.invoke(
            app, ["agents", "set", "mei", "--skills", "welfare,elder_yue", "--languages", "zh-CN"]
        ).exit_code
        == 0
    )
    resumed = json.loads(cli.invoke(app, ["campaign", "resume", "notice", "--json"]).stdout)
    assert resumed["status"] == "running" and resumed["missing_skills"] == []
    [warning] = resumed["warnings"]
    assert "none of the agents who could take it (mei) speaks 'yue'" in warning
    assert cli.invoke(app, ["agents", "set", "mei", "--languages", "zh-CN,yue"]).exit_code == 0
    assert cli.invoke(app, ["campaign", "pause", "notice"]).exit_code == 0
    resumed = json.loads(cli.invoke(app, ["campaign", "resume", "notice", "--json"]).stdout)
    assert (resumed["warnings"], resumed["missing_skills"]) == ([], [])
    assert len(unstaffed(db)) == 2


def test_an_agent_campaign_without_agents_and_a_missing_flow_are_said(cli: CliRunner, db: Database) -> None:
    assert cli.invoke(app, ["campaign", "create", "calls"]).exit_code == 0
    out = json.loads(cli.invoke(app, ["campaign", "start", "calls", "--json"]).stdout)
    assert out["warnings"] == [
        "campaign 'calls' puts calls through to any agent, but there is no enabled agent at all: those callers "
        "would wait until the queue gives up on them (an agent's profile is set with `warmline agents set NAME` "
        "or on the console's Agents page)"
    ]
    assert (
        cli.invoke(
            app, ["campaign", "create", "lost", "--kind", "broadcast", "--flow", "no_such_flow"]
        ).exit_code
        == 0
    )
    out = json.loads(cli.invoke(app, ["campaign", "start", "lost", "--json"]).stdout)
    assert out["status"] == "running" and "its flow 'no_such_flow' is not in" in out["warnings"][0]


def test_api_and_console_start_report_it_too(flows: Settings, db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "maria", Role.manager, PASSWORD, actor="test")
        service.create_user(s, "boss", Role.supervisor, PASSWORD, actor="test")
    make_agents(db, {"mei": ["welfare"]})
    with TestClient(create_app(flows, db)) as client:
        maria = login(client, "maria") | {"Accept-Language": "en"}
        made = client.post(
            "/api/campaigns",
            headers=maria,
            json={"name": "notice", "kind": "broadcast", "flow": "notice_yue"},
        )
        assert made.status_code == 201, made.text
        started = client.post(
            "/api/campaigns/notice/status", headers=maria, json={"status": "running"}
        ).json()
        assert started["status"] == "running" and started["missing_skills"] == ["elder_yue"]
        assert "skill 'elder_yue'" in started["warnings"][0]
        paused = client.post("/api/campaigns/notice/status", headers=maria, json={"status": "paused"}).json()
        assert "warnings" not in paused
        form = console_login(client, "boss")
        assert form.status_code == 303
        page = client.post("/console/campaigns/notice/status", data={"status": "running"})
        assert page.status_code == 200 and 'id="staffing" class="error" role="alert"' in page.text
        # The supervisor's Chinese browser: the same warning in zh-CN.
        assert "没有启用的坐席具备“elder_yue”技能" in page.text
    assert [(e.actor, e.target) for e in unstaffed(db)] == [("maria", "notice"), ("boss", "notice")]


# ------------------------------------------------------------------------------ inbound lines


def test_hotline_check_and_the_start_of_the_service_report_lines_nobody_can_serve(
    cli: CliRunner, flows: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    make_agents(db, {"mei": ["welfare", "vaccination"], "wong": ["elder_yue"]})
    give(db, "mei", lines=["community-hotline"])
    give(db, "wong", lines=["12345"], languages=["yue"])
    result = cli.invoke(app, ["hotline", "check", "--json"])
    assert result.exit_code == 1, result.output
    lines = {line["number"]: line for line in json.loads(result.stdout)}
    assert lines["12345"]["warnings"] == [] and lines["12345"]["name"] == "community-hotline"
    elder = lines["96100"]
    assert elder["needs"] == [
        "an agent with skill 'elder_yue' on line 'elder-line' who speaks 'yue'",
        "any agent on line 'elder-line' who speaks 'yue'",
    ]
    assert elder["missing_skills"] == [], "wong has the skill: the line is what is missing"
    assert elder["warnings"][0] == (
        "line “elder-line” (96100) puts callers through to an agent with skill 'elder_yue' on line 'elder-line' "
        "who speaks 'yue', but the agents with skill 'elder_yue' (wong) do not serve line 'elder-line': "
        "they would wait until the queue gives up on them"
    )
    text = cli.invoke(app, ["hotline", "check"]).stdout
    assert "12345 community-hotline: staffed" in text and "96100 elder-line: no agent for some calls" in text
    give(db, "wong", lines=["12345", "96100"])
    ok = cli.invoke(app, ["hotline", "check"])
    assert ok.exit_code == 0 and "96100 elder-line: staffed" in ok.stdout
    give(db, "wong", lines=["12345"])
    with caplog.at_level(logging.WARNING, logger="hotline.staffing"):
        import asyncio

        asyncio.run(log_unstaffed(ServiceContext(flows, db, None)))
    said = [r.getMessage() for r in caplog.records if r.name == "hotline.staffing"]
    assert len(said) == 2 and all(m.startswith("line “elder-line” (96100)") for m in said)
    with db.session() as s:
        assert [line["number"] for line in check_lines(s, flows)] == ["12345", "96100"]

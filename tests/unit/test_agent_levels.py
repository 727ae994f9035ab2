"""Agent levels (trainee → supervised → agent): stored per agent, set by `warmline agents set --level`,
the profile API and the console form, audited; campaigns and inbound lines ask for a `min_level` and
routing (choose_agent, reserve_agent, the hand-over on the fake Asterisk) never offers such a call to
an agent below it. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents import profiles
from agents.handover import Handover, HandoverDeps, HandoverRequest, QueuePolicy, SkillQueues
from agents.profiles import ProfileError
from agents.routing import (
    AgentCandidate,
    Need,
    choose_agent,
    gap,
    level_at_least,
    reserve_agent,
    set_state,
    unmet,
)
from core.audit import AuditEntry
from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from dialer.agent_dial.service import desk_of
from dialer.campaigns import build_spec
from dialer.models import Campaign, CampaignKind
from dialer.staffing import campaign_needs
from hotline.config import InboundNumber
from tests.fakes.ari import Callee
from tests.fakes.clock import run_virtual
from tests.utils import PASSWORD, login
from tests.utils.agents import endpoint_of, fake_node, make_agents
from tests.utils.cli import CliRunner, ok, run
from warmline.app import create_app

pytestmark = pytest.mark.usefixtures("english")

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def row(agent: str, level: str, idle_min: int = 0) -> AgentCandidate:
    return AgentCandidate(
        agent,
        f"ep-{agent}",
        skills=("welfare",),
        state="available",
        last_call_end=NOW - timedelta(minutes=idle_min),
        level=level,
    )


# ------------------------------------------------------------------------------ the rule


def test_a_call_that_asks_for_a_level_goes_to_no_one_below_it() -> None:
    trainee, supervised, agent = row("tao", "trainee", 60), row("su", "supervised", 30), row("an", "agent", 1)
    rows = [trainee, supervised, agent]
    assert choose_agent(rows, "welfare") == trainee, "no level asked: longest idle, whoever"
    assert choose_agent(rows, "welfare", min_level="supervised") == supervised
    assert choose_agent(rows, "welfare", min_level="agent") == agent
    assert choose_agent([trainee], "welfare", min_level="supervised") is None
    assert choose_agent(rows, "welfare", min_level="agent", prefer="tao") == agent, (
        "a preference never lowers it"
    )
    assert level_at_least("agent", None) and not level_at_least("typo", "trainee"), (
        "unknown: below every level"
    )
    assert not level_at_least("agent", "typo"), "an unknown level asked for is met by nobody"
    found = gap([trainee], Need("welfare", min_level="agent"))
    assert found is not None and found.missing == "level" and "level 'agent'" in found.reason


def test_campaigns_and_lines_read_min_level() -> None:
    spec = build_spec({"name": "elder-2026", "min_level": "agent"})
    assert spec.min_level == "agent"
    assert build_spec({"name": "notices"}).min_level is None
    with pytest.raises(Exception, match="min_level"):
        build_spec({"name": "bad", "min_level": "expert"})
    assert InboundNumber(name="elder-line", min_level="supervised").min_level == "supervised"


# ------------------------------------------------------------------------------ stored, set, audited


def people(db: Database) -> None:
    make_agents(db, {"tao": ["welfare"], "an": ["welfare"]})
    with db.session() as s:
        service.create_user(s, "boss", Role.supervisor, PASSWORD, actor="test")


def test_cli_sets_the_level_show_says_it_and_it_is_audited(cli: CliRunner, db: Database) -> None:
    people(db)
    out = json.loads(ok(cli, "agents", "set", "tao", "--level", "trainee", "--json").stdout)
    assert (out["level"], out["changed"]) == ("trainee", ["level"])
    shown = json.loads(ok(cli, "agents", "show", "tao", "--json").stdout)
    assert shown["level"] == "trainee"
    assert "level: trainee" in ok(cli, "agents", "show", "tao").stdout
    assert "level" not in ok(cli, "agents", "show", "an").stdout.split(";")[-1], "full agents: not said"
    said = run(cli, "agents", "set", "tao", "--level", "expert", code=2)
    assert said == ""  # the error is on stderr
    with db.session() as s:
        changes = [
            a.detail["changes"]
            for a in s.scalars(select(AuditEntry).where(AuditEntry.action == "agent_profile.update"))
        ]
    assert changes == [{"level": {"before": "agent", "after": "trainee"}}]
    with pytest.raises(ProfileError, match="not a level"), db.session() as s:
        profiles.update_profile(s, "tao", actor="test", level="expert")


def test_api_patch_sets_the_level_and_refuses_a_wrong_one(settings: Settings, db: Database) -> None:
    people(db)
    with TestClient(create_app(settings, db)) as client:
        boss = login(client, "boss")
        resp = client.patch("/api/agents/tao/profile", headers=boss, json={"level": "supervised"})
        assert resp.status_code == 200, resp.text
        assert (resp.json()["level"], resp.json()["changed"]) == ("supervised", ["level"])
        bad = client.patch("/api/agents/tao/profile", headers=boss, json={"level": "expert"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "level"
        tao = login(client, "tao", "correct horse battery")
        assert (
            client.patch("/api/agents/tao/profile", headers=tao, json={"level": "agent"}).status_code == 403
        )
        assert client.get("/api/agents/me/profile", headers=tao).json()["level"] == "supervised"


def test_reserve_agent_skips_a_trainee_for_a_real_call(db: Database) -> None:
    people(db)
    with db.session() as s:
        profiles.update_profile(s, "tao", actor="test", level="trainee")
        set_state(s, "tao", "available", "test", since=NOW - timedelta(hours=2))
        set_state(s, "an", "available", "test", since=NOW - timedelta(minutes=1))
    with db.session() as s:
        [gone] = unmet(s, [Need("welfare", min_level="agent"), Need("nobody-has-it", min_level="agent")])
        assert gone.missing == "skill"
        chosen = reserve_agent(s, "welfare", now=NOW, min_level="agent")
        assert chosen is not None and chosen.agent == "an", "the trainee idles longest, yet is skipped"
        assert reserve_agent(s, "welfare", now=NOW, min_level="agent") is None, "an is on the call now"
        practice = reserve_agent(s, "welfare", now=NOW)
        assert practice is not None and practice.agent == "tao", "a call that asks no level may go to her"


@pytest.mark.parametrize("min_level", ["agent", None])
def test_the_hand_over_never_rings_a_trainee_for_a_line_that_asks_for_agents(
    min_level: str | None, settings: Settings, db: Database
) -> None:
    people(db)
    with db.session() as s:
        profiles.update_profile(s, "tao", actor="test", level="trainee")
        set_state(s, "tao", "available", "test", since=NOW - timedelta(hours=2))

    async def main() -> tuple[str, list[str]]:
        async with fake_node(settings, db, {"tao": Callee(answer_after=None)}) as node:
            handover = Handover(HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues()))
            node.asterisk.place("caller-1", "Local/8613800138000@lab-pstn", stage="stasis", callee=Callee())
            request = HandoverRequest(
                "caller-1",
                skill="welfare",
                line=("elder-line",),
                min_level=min_level,
                policy=QueuePolicy(timeout=5, ring_timeout=5, moh=None),
            )
            result = await handover.connect(request)
            rung = [str(r.params.get("endpoint")) for r in node.asterisk.calls("originate")]
            return result.outcome, rung

    outcome, rung = run_virtual(main())
    assert outcome == "abandoned"
    if min_level == "agent":
        assert rung == [], "only a trainee was free: nobody is rung, the caller waits"
    else:
        assert rung == [endpoint_of(db, "tao")], "no level asked: the trainee is rung (and does not answer)"


def test_a_trainee_may_not_take_a_preview_campaign_that_asks_for_agents(
    db: Database, settings: Settings
) -> None:
    people(db)
    with db.session() as s:
        profiles.update_profile(s, "tao", actor="test", level="trainee")
    with db.session() as s:
        trainee, full = desk_of(s, "tao"), desk_of(s, "an")
    campaign = Campaign(
        name="elder-2026", kind=CampaignKind.agent, skill=None, language=None, min_level="agent"
    )
    assert not trainee.may_take(campaign) and full.may_take(campaign)
    needs, _problems = campaign_needs(settings, campaign)
    assert [n.min_level for n in needs] == ["agent"], "the start-up check asks for the level too"
    campaign.min_level = None
    assert trainee.may_take(campaign)

"""The dialer keeps the free agents of a paced campaign on the line (settings.dialer_nailed_agents)
and puts live answers through to them with no ring; on the fake Asterisk in virtual time, SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agents.routing import AgentCandidate
from core.db import Database
from core.settings import Settings
from dialer.campaigns import build_spec, spec_of
from dialer.engine.nailing import NailKeeper
from dialer.models import Campaign
from tests.fakes.ari import Callee, FakeAsterisk
from tests.unit.test_pacing_engine_fake_ari import (
    attempts,
    make_campaign,
    run_worker,
    settings_for,
)
from tests.utils.agents import available, endpoint_of, make_agents, record_and_enter_stasis


def test_a_live_answer_goes_into_the_nailed_agents_bridge_with_no_ring(tmp_path: Path, db: Database) -> None:
    make_agents(db, {"lin": []})
    available(db, "lin")
    make_campaign(db, "progressive", contacts=1, nailed=None)  # nothing said: kept on the line
    settings = settings_for(tmp_path, db)  # the service's default: on
    asterisk = FakeAsterisk(
        default=lambda endpoint: Callee(answer_after=2.0, hangup_on="answer", hangup_after=20)
    )
    asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
    lin = endpoint_of(db, "lin")
    asterisk.callee(lin, Callee(answer_after=0.3))

    run_worker(settings, db, asterisk, lambda: bool(attempts(db)) and attempts(db)[0].outcome is not None)

    [attempt] = attempts(db)
    assert attempt.outcome == "agent" and attempt.agent == "lin"
    assert attempt.detail["agent_wait_s"] < 0.1, "AMD's verdict to the nailed bridge: no ring"
    assert attempt.detail["nailed"] is True, "the attempt says it went to an agent kept on the line"
    to_lin = [r for r in asterisk.calls("originate") if r.params["endpoint"] == lin]
    assert len(to_lin) == 1 and to_lin[0].params["appArgs"] == ["nailed", "lin"], "called once, nailed"
    bridged = [r for r in asterisk.calls("add_channel") if r.params["channel"] == attempt.id]
    assert len(bridged) == 1 and (bridged[0].target or "").startswith("nailed-bridge-")
    assert asterisk.calls("play", attempt.id) == [], "no apology"


def test_a_campaign_that_says_nailed_false_rings_its_agent(tmp_path: Path, db: Database) -> None:
    make_agents(db, {"lin": []})
    available(db, "lin")
    campaign_id = make_campaign(db, "predictive", contacts=1, nailed=False)
    with db.session() as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None and spec_of(campaign).nailed is False, "kept with the campaign"
    settings = settings_for(tmp_path, db)
    asterisk = FakeAsterisk(
        default=lambda endpoint: Callee(answer_after=2.0, hangup_on="answer", hangup_after=20)
    )
    asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
    lin = endpoint_of(db, "lin")
    asterisk.callee(lin, Callee(answer_after=0.3))

    run_worker(settings, db, asterisk, lambda: bool(attempts(db)) and attempts(db)[0].outcome is not None)

    [attempt] = attempts(db)
    assert attempt.outcome == "agent" and attempt.agent == "lin"
    to_lin = [r for r in asterisk.calls("originate") if r.params["endpoint"] == lin]
    assert len(to_lin) == 1 and to_lin[0].params.get("appArgs") != ["nailed", "lin"], "rung for the call"
    assert not any((r.target or "").startswith("nailed-bridge-") for r in asterisk.calls("add_channel"))
    assert "nailed" not in attempt.detail


def test_nailed_is_on_unless_the_campaign_says_otherwise() -> None:
    base = {"name": "c", "kind": "agent", "mode": "predictive", "caller_id": "4001234567"}
    assert build_spec(base).nailed is True
    assert build_spec({**base, "nailed": False}).nailed is False
    assert Settings(_env_file=None).dialer_nailed_agents is True


def row(agent: str, state: str, since: datetime) -> AgentCandidate:
    return AgentCandidate(agent, f"{agent}-ep", ("welfare",), state, since)


class NoLegs:
    def nailed(self, agent: str) -> bool:
        return agent == "bo"


def test_who_is_called_to_be_nailed_up_and_who_is_released(db: Database) -> None:
    t1, t2 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC), datetime(2026, 3, 2, 2, 5, tzinfo=UTC)
    keeper = NailKeeper(NoLegs(), db)  # type: ignore[arg-type]
    rows = [row("mei", "available", t1), row("lin", "wrap_up", t1), row("bo", "break", t1)]
    call, release = keeper.plan(rows, {"welfare"})
    assert [r.agent for r in call] == ["mei"] and release == ["bo"]
    keeper.tried["mei"] = t1  # mei was called and hung the nailed leg up
    call, _ = keeper.plan(rows, {"welfare"})
    assert call == [], "not called again for the same availability"
    call, _ = keeper.plan([row("mei", "available", t2)], {"welfare"})
    assert [r.agent for r in call] == ["mei"], "a new availability: called once more"
    call, _ = keeper.plan([row("zhu", "available", t1)], {"census"})
    assert call == [], "not in a paced campaign's skill"

"""Cool-down after an escalated or a very long call, on the fake Asterisk in virtual time (both
databases): mei takes a hotline call; when she pressed the help key on it (escalated) or it ran past
`long_call_minutes`, the hand-over starts her cool-down and publishes the check-in alert (the same
`check_in` event as after an abusive call) with what she hears, in Chinese; routing offers her no
call until it ends (the next caller waits and gives up), and offers her calls again afterwards. A
short call nobody escalated earns no rest."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.handover import Handover, HandoverDeps, SkillQueues
from agents.help.models import AgentCooldown
from agents.help.service import request_help
from core.db import Database, utcnow
from core.messages import BusMessage, CallEvent
from core.settings import Settings
from hotline.service import Hotline, InboundCall, InboundResult
from ivr.runner import FlowRunner
from tests.fakes.ari import Callee
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts
from tests.unit.test_hotline_fake_ari import CONFIG, HOTLINE, TUESDAY_10AM, World, presses
from tests.utils.agents import available, fake_node, make_agents

TALKS_20_S = Callee(answer_after=0.5, hangup_on="answer", hangup_after=20)


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    make_agents(db, {"mei": ["vaccination"]})
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


class Clock:
    """Wall time for the hand-over's ledger and cool-downs, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def calls(
    settings: Settings, db: Database, *, escalate: bool, rest_after_first: timedelta | None = None
) -> tuple[list[InboundResult], list[BusMessage], int]:
    """Two hotline calls for mei, one after the other; between them she is available again and
    the clock moves on by `rest_after_first` (None: not at all). The results, what was published,
    and how many times her phone rang."""
    clock = Clock(utcnow())  # the hand-over's: the agents' ledger is written at the real time
    available(db, "mei")
    published: list[BusMessage] = []

    async def publish(message: BusMessage) -> None:
        published.append(message)

    async def main() -> tuple[list[InboundResult], int]:
        async with fake_node(settings, db, {"mei": TALKS_20_S}) as node:
            w = World(
                node.asterisk,
                node.ari,
                node.dispatcher,
                settings,
                db,
                Hotline(CONFIG, now=lambda: TUESDAY_10AM),
            )
            deps = HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues(), now=clock)
            deps.publish = publish
            runner = FlowRunner(node.ari, SilentPrompts(settings.var_dir / "prompts"))

            async def serve(cid: str) -> InboundResult:
                call = InboundCall(
                    cid, HOTLINE, node.ari, node.dispatcher, runner, Handover(deps), settings, db
                )
                return await w.hotline.handle(call)

            first = w.caller(presses("1"))
            if escalate:
                with db.session() as s:  # the help key, pressed during the call
                    request_help(s, "mei", first, clock())
            results = [await serve(first)]
            available(db, "mei")
            if rest_after_first is not None:
                clock.at += rest_after_first
            results.append(await serve(w.caller(presses("1"))))
            rung = len([c for c in node.asterisk.calls("originate") if "agent-" in str(c.params)])
            return results, rung

    results, rung = run_virtual(main())
    return results, published, rung


def test_an_escalated_call_rests_the_agent_and_asks_for_a_check_in(settings: Settings, db: Database) -> None:
    results, published, rung = calls(settings, db, escalate=True)
    assert [r.outcome for r in results] == ["agent", "abandoned"], "no call offered while she rests"
    assert rung == 1
    with db.session() as s:
        [rest] = s.scalars(select(AgentCooldown))
        assert (rest.agent, rest.reason, rest.call_ref) == ("mei", "escalated", results[0].channel_id)
        assert rest.until - rest.started_at == timedelta(minutes=settings.escalated_cooldown_minutes)
    [alert] = [m for m in published if isinstance(m, CallEvent) and m.kind == "check_in"]
    assert (alert.call_id, alert.detail["agent"], alert.detail["reason"]) == (
        results[0].channel_id,
        "mei",
        "escalated",
    )
    assert "请" in alert.detail["message"] and "mei" in alert.detail["message"]
    assert "5分钟" in alert.detail["agent_message"], "the agent hears: you have 5 minutes"


def test_a_very_long_call_rests_the_agent(settings: Settings, db: Database) -> None:
    settings.long_call_minutes = 0.25  # 15 s: the 20-second call is "very long"
    results, published, _rung = calls(settings, db, escalate=False)
    assert [r.outcome for r in results] == ["agent", "abandoned"]
    with db.session() as s:
        assert s.scalars(select(AgentCooldown.reason)).all() == ["long_call"]
    assert [m.detail["reason"] for m in published if isinstance(m, CallEvent) and m.kind == "check_in"] == [
        "long_call"
    ]


def test_calls_are_offered_again_once_the_rest_is_over(settings: Settings, db: Database) -> None:
    results, _published, rung = calls(settings, db, escalate=True, rest_after_first=timedelta(minutes=6))
    assert [r.outcome for r in results] == ["agent", "agent"] and rung == 2


def test_a_short_call_nobody_escalated_earns_no_rest(settings: Settings, db: Database) -> None:
    results, published, _rung = calls(settings, db, escalate=False)
    assert [r.outcome for r in results] == ["agent", "agent"]
    with db.session() as s:
        assert s.scalars(select(AgentCooldown)).all() == []
    assert not [m for m in published if isinstance(m, CallEvent) and m.kind == "check_in"]

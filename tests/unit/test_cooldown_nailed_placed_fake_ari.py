"""Cool-down after calls the service did not ring: a nailed call (the callee put through the agent's
open line, agents.handover.nailed) and a call the agent placed (agents.placed_calls), on the fake
Asterisk in virtual time, both databases. Escalated (the help key was pressed on it) or very long,
the call rests its agent as a rung call does (tests/unit/test_cooldown_after_call_fake_ari.py): an
``agent_cooldowns`` row, the check-in alert, and no callee offered while it runs; a short call
nobody escalated earns none."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from agents.handover import HandoverRequest
from agents.help.models import AgentCooldown
from agents.help.service import request_help
from core.db import Database, utcnow
from core.settings import Settings
from tests.unit.test_nailed_fake_ari import ANSWERS, ORIGIN, PACED, World, scenario
from tests.unit.test_placed_calls_fake_ari import CALL_ID, TALKS, place
from tests.utils.agents import available, make_agents


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


def rests(db: Database) -> list[tuple[str, str, str | None]]:
    with db.session() as s:
        return [(r.agent, r.reason, r.call_ref) for r in s.scalars(select(AgentCooldown))]


def nailed_calls(settings: Settings, db: Database, *, escalate: bool, talk_s: float) -> tuple[World, bool]:
    """mei nailed up takes one callee for ``talk_s`` seconds; then, available again, is she put
    through the next one?"""
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")
    if escalate:
        with db.session() as s:  # the help key, pressed on the call (its ref is the attempt)
            request_help(s, "mei", ORIGIN.attempt_id or "", utcnow())

    async def body(w: World) -> tuple[World, bool]:
        await w.nail("mei")
        first = await w.connect(w.customer(hangup_after=talk_s))
        assert (first.outcome, first.agent) == ("connected", "mei")
        available(db, "mei")  # her wrap-up is done
        second = w.customer(hangup_after=3)
        request = HandoverRequest(second, skill="welfare", origin=ORIGIN, policy=PACED)
        through = await w.nailed.connect(request)
        return w, through is not None

    result: tuple[World, bool] = scenario(settings, db, {"mei": ANSWERS}, body)
    return result


def test_a_long_nailed_call_rests_the_agent_and_no_callee_is_put_through(
    settings: Settings, db: Database
) -> None:
    settings.long_call_minutes = 0.25  # 15 s: the 20-second call is very long
    w, put_through = nailed_calls(settings, db, escalate=False, talk_s=20)
    assert rests(db) == [("mei", "long_call", "att-7")]
    assert not put_through, "no callee offered while she rests"
    [alert] = [e for e in w.published if e.kind == "check_in"]
    assert (alert.call_id, alert.detail["agent"], alert.detail["reason"]) == ("att-7", "mei", "long_call")


def test_an_escalated_nailed_call_rests_the_agent(settings: Settings, db: Database) -> None:
    _w, put_through = nailed_calls(settings, db, escalate=True, talk_s=5)
    assert rests(db) == [("mei", "escalated", "att-7")]
    assert not put_through


def test_a_short_nailed_call_earns_no_rest(settings: Settings, db: Database) -> None:
    _w, put_through = nailed_calls(settings, db, escalate=False, talk_s=5)
    assert rests(db) == []
    assert put_through, "the next callee goes through as before"


def test_a_long_call_the_agent_placed_rests_them(settings: Settings, db: Database) -> None:
    settings.long_call_minutes = 0.25
    seen = place(settings, db, agent=ANSWERS, far_end=TALKS)  # 20 s of conversation
    assert seen.result.outcome == "connected"
    assert rests(db) == [("mei", "long_call", CALL_ID)]


def test_an_escalated_call_the_agent_placed_rests_them(settings: Settings, db: Database) -> None:
    with db.session() as s:
        request_help(s, "mei", CALL_ID, utcnow())
    seen = place(settings, db, agent=ANSWERS, far_end=TALKS)
    assert seen.result.outcome == "connected"
    assert rests(db) == [("mei", "escalated", CALL_ID)]


def test_a_short_call_the_agent_placed_earns_no_rest(settings: Settings, db: Database) -> None:
    seen = place(settings, db, agent=ANSWERS, far_end=TALKS)
    assert seen.result.outcome == "connected"
    assert rests(db) == []

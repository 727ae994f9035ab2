"""Agent routing: availability, skill, longest idle, fairness -- the pure choice and the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from agents.models import AgentProfile, AgentStateChange
from agents.routing import (
    AgentCandidate,
    candidates,
    choose_agent,
    rank,
    release_agent,
    reserve_agent,
    set_state,
    summarise,
)
from agents.service import ensure_sip_account
from agents.states import current_state
from core.auth import service
from core.auth.models import Role, User
from core.db import Database

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def cand(name: str, *, skills: tuple[str, ...] = (), state: str = "available", idle_min: int | None = 10,
         calls: int = 0, talk: float = 0.0) -> AgentCandidate:  # fmt: skip
    end = None if idle_min is None else NOW - timedelta(minutes=idle_min)
    return AgentCandidate(name, name, skills, state, None, end, calls, talk)


def test_only_available_agents_with_the_skill() -> None:
    rows = [
        cand("a", skills=("welfare",), state="on_call", idle_min=60),
        cand("b", skills=("vaccination",), idle_min=50),
        cand("c", skills=("welfare",), state="break", idle_min=40),
        cand("d", skills=("welfare", "vaccination"), idle_min=5),
    ]
    assert choose_agent(rows, "welfare") == rows[3]
    assert choose_agent(rows, "vaccination") == rows[1]
    assert choose_agent(rows, "billing") is None
    assert choose_agent(rows, "") == rows[1], "no skill: anyone available, longest idle"
    assert choose_agent(rows, None, exclude={"b"}) == rows[3]


def test_longest_idle_first_then_fairness_then_name() -> None:
    rows = [
        cand("x", idle_min=5),
        cand("y", idle_min=30),
        cand("never", idle_min=None),  # no call in the ledger: longest idle of all
    ]
    assert [r.agent for r in rank(rows)] == ["never", "y", "x"]
    tied = [
        cand("p", idle_min=10, calls=4),
        cand("q", idle_min=10, calls=2),
        cand("r", idle_min=10, calls=2, talk=9),
    ]
    assert [r.agent for r in rank(tied)] == ["q", "r", "p"]
    same = [cand("m", idle_min=10), cand("k", idle_min=10)]
    assert [r.agent for r in rank(same)] == ["k", "m"]


def change(state: str, minutes: float) -> AgentStateChange:
    return AgentStateChange(agent="a", state=state, reason=None, since=NOW - timedelta(minutes=minutes))


def test_summarise_the_ledger() -> None:
    day = NOW.replace(hour=0)
    changes = [
        change("available", 120),
        change("on_call", 100),
        change("wrap_up", 95),
        change("available", 94),
        change("on_call", 30),
        change("on_call", 29.9),  # the softphone repeats what routing already wrote
        change("wrap_up", 20),
        change("break", 19),
        change("available", 5),
    ]
    row = summarise("a", "a", ["welfare"], changes, now=NOW, since_day=day)
    assert row.state == "available"
    assert row.calls_today == 2
    assert row.talk_seconds_today == 5 * 60 + 10 * 60
    assert row.last_call_end == NOW - timedelta(minutes=19), "idle since the first state after wrap-up"


def make_agent(db: Database, name: str, skills: list[str]) -> None:
    with db.session() as s:
        user = service.create_user(s, name, Role.agent, "correct horse battery", actor="test")
        ensure_sip_account(s, user, actor="test")
        s.add(AgentProfile(user_id=user.id, skills=skills))


def test_candidates_and_reservation_on_the_database(db: Database) -> None:
    make_agent(db, "mei", ["welfare"])
    make_agent(db, "lin", ["welfare", "vaccination"])
    make_agent(db, "off", ["welfare"])
    with db.session() as s:
        set_state(s, "mei", "available", "login", since=NOW - timedelta(hours=2))
        set_state(s, "mei", "on_call", "x", since=NOW - timedelta(minutes=40))
        set_state(s, "mei", "available", "done", since=NOW - timedelta(minutes=30))
        set_state(s, "lin", "available", "login", since=NOW - timedelta(hours=1))
        set_state(s, "lin", "on_call", "x", since=NOW - timedelta(minutes=20))
        set_state(s, "lin", "available", "done", since=NOW - timedelta(minutes=10))
        user = s.scalar(select(User).where(User.name == "off"))
        assert user is not None
        user.disabled = True
    with db.session() as s:
        rows = {c.agent: c for c in candidates(s, now=NOW)}
        assert set(rows) == {"mei", "lin"}, "disabled agents are not candidates"
        assert rows["mei"].last_call_end == NOW - timedelta(minutes=30)
        chosen = reserve_agent(s, "welfare", now=NOW)
        assert chosen is not None and chosen.agent == "mei", "idle 30 min beats 10 min"
    with db.session() as s:
        latest = current_state(s, "mei")
        assert latest is not None and latest.state == "on_call" and latest.reason == "routed"
        # mei is taken: the next welfare call goes to lin, a vaccination call too.
        nxt = reserve_agent(s, "welfare", now=NOW + timedelta(seconds=1))
        assert nxt is not None and nxt.agent == "lin"
        assert reserve_agent(s, "welfare", now=NOW + timedelta(seconds=2)) is None
    with db.session() as s:
        # The bridge ends mei's call: wrap_up, since her softphone said nothing newer.
        assert release_agent(s, "mei", "wrap_up", "call_ended", reserved_at=NOW)
        # lin's softphone reported on its own after the reservation: it knows best.
        set_state(s, "lin", "wrap_up", "softphone", since=NOW + timedelta(seconds=30))
        assert not release_agent(s, "lin", "break", "no_answer", reserved_at=NOW + timedelta(seconds=1))
    with db.session() as s:
        mei, lin = current_state(s, "mei"), current_state(s, "lin")
        assert mei is not None and mei.state == "wrap_up"
        assert lin is not None and lin.state == "wrap_up" and lin.reason == "softphone"

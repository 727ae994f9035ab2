"""Every branch of the hand-over to an agent, in milliseconds: `agents.handover` against the fake
Asterisk, with the real EventDispatcher, routing and state ledger (SQLite and PostgreSQL) and the
real stereo capture and registry. The loop clock is virtual, so waits and timeouts are exact.

What only a real Asterisk can show (the agent's audio on the left channel, the caller's on the
right) stays in tests/integration/test_bridge_lab.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import soundfile as sf
from sqlalchemy import select

from agents.handover import (
    CallOrigin,
    Handover,
    HandoverDeps,
    HandoverRequest,
    HandoverResult,
    QueuePolicy,
    SkillQueues,
)
from agents.routing import candidates, choose_agent, set_state
from agents.states import current_state
from core.ari_events import EventDispatcher
from core.db import Database, utcnow
from core.settings import Settings
from recordings.models import CallRecording
from recordings.service import open_recording
from tests.fakes.ari import Callee, FakeAri, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.utils.agents import available, fake_node, make_agents

CUSTOMER = "Local/8613800138000@lab-pstn"
SKILLS = {"mei": ["vaccination", "welfare"], "lin": ["welfare"], "bo": ["welfare"]}
ANSWERS = Callee(answer_after=0.5)


@dataclass
class World:
    asterisk: FakeAsterisk
    ari: FakeAri
    dispatcher: EventDispatcher
    handover: Handover
    settings: Settings
    db: Database

    def endpoint(self, agent: str) -> str:
        from agents.models import SipAccount
        from core.auth.models import User

        with self.db.session() as s:
            found = s.scalar(
                select(SipAccount.endpoint)
                .join(User, User.id == SipAccount.user_id)
                .where(User.name == agent)
            )
        assert found is not None
        return f"PJSIP/{found}"

    def customer(self, *, hangup_after: float | None = None) -> str:
        """An answered caller sitting in Stasis (the dialer's call after AMD, or a hotline caller)."""
        channel_id = f"cust-{uuid.uuid4()}"
        self.asterisk.place(channel_id, CUSTOMER, stage="stasis", callee=Callee())
        if hangup_after is not None:
            self.later(hangup_after, lambda: self.asterisk.hangup_by_callee(channel_id))
        return channel_id

    def later(self, seconds: float, action: Callable[[], object]) -> None:
        asyncio.get_running_loop().call_later(seconds, action)

    def state(self, agent: str) -> tuple[str, str] | None:
        with self.db.session() as s:
            st = current_state(s, agent)
            return (st.state, st.reason or "") if st is not None else None

    async def connect(self, channel_id: str, skill: str | None = "welfare", **kw: Any) -> HandoverResult:
        origin = kw.pop("origin", CallOrigin())
        announce = kw.pop("announce", None)
        on_agent = kw.pop("on_agent", None)
        policy = QueuePolicy(**{"timeout": 60, "ring_timeout": 10, "moh": "default", **kw})
        request = HandoverRequest(
            channel_id, skill=skill, origin=origin, policy=policy, announce=announce, on_agent=on_agent
        )
        return await self.handover.connect(request)


@asynccontextmanager
async def world(settings: Settings, db: Database, callees: dict[str, Callee]) -> AsyncIterator[World]:
    async with fake_node(settings, db, callees) as node:
        handover = Handover(HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues()))
        yield World(node.asterisk, node.ari, node.dispatcher, handover, settings, db)


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


def scenario(
    settings: Settings, db: Database, callees: dict[str, Callee], body: Callable[[World], Awaitable[Any]]
) -> Any:
    async def main() -> Any:
        async with world(settings, db, callees) as w:
            return await body(w)

    return run_virtual(main())


# ---------------------------------------------------------------- connected


def test_answered_call_is_bridged_recorded_and_the_agent_wraps_up(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"]})
    available(db, "mei")
    origin = CallOrigin(
        campaign="flu-2026", elder_welfare=True, attempt_id="att-7", contact_name="王奶奶",
        phone_masked="138****8000", script="flu-v1", fields={"社区": "朝阳", "clinic": "朝阳社区"},
    )  # fmt: skip

    async def body(w: World) -> tuple[HandoverResult, World, str]:
        cid = w.customer(hangup_after=30)
        return await w.connect(cid, "vaccination", origin=origin), w, cid

    result, w, cid = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.agent, result.answered, result.ended_by) == (
        "connected",
        "mei",
        True,
        "customer",
    )
    assert result.agents_tried == ["mei"]
    assert result.wait_seconds == pytest.approx(0.5, abs=0.1), "rung at once, answered after 0.5 s"
    assert result.talk_seconds == pytest.approx(29.5, abs=0.2)
    assert str(result) == "connected to mei for 30 s, ended by customer"
    ops = [r.op for r in w.asterisk.requests if r.op not in ("get_channel",)]
    assert ops[:2] == ["start_moh", "originate"], "the caller hears music, then the agent is rung"
    assert ops[ops.index("originate") :][:5] == [
        "originate",
        "subscribe",
        "create_bridge",
        "stop_moh",
        "add_channel",
    ]
    assert {"hangup", "destroy_bridge"} <= set(ops[ops.index("add_channel") :])
    ring = w.asterisk.calls("originate")[0]
    assert ring.params["endpoint"] == w.endpoint("mei") and ring.params["context"] == "warmline-record"
    headers = {k.removeprefix("PJSIP_HEADER(add,").removesuffix(")"): unquote(v)
               for k, v in ring.body["variables"].items() if k.startswith("PJSIP_HEADER")}  # fmt: skip
    assert headers["X-Warmline-Campaign"] == "flu-2026" and headers["X-Warmline-Phone"] == "138****8000"
    assert headers["X-Warmline-Field-Name"] == "王奶奶" and headers["X-Warmline-Attempt"] == "att-7"
    assert headers["X-Warmline-Field-clinic"] == "朝阳社区" and headers["X-Warmline-Skill"] == "vaccination"
    assert "13800138000" not in str(ring.body), "never the full number"
    assert w.asterisk.destroyed.get(cid) == 16 and not w.asterisk.channels, "both legs ended"
    assert w.state("mei") == ("wrap_up", "call_ended")
    assert result.recording_id is not None and result.recording_path is not None
    assert result.recording_path.name.endswith(".wav.enc"), "stored encrypted at rest"
    with db.session() as s:
        stored = s.get(CallRecording, result.recording_id)
        assert stored is not None
        with open_recording(settings, stored) as f:  # the one decrypting reader
            audio, rate = sf.read(f, dtype="int16")
    assert rate == 8000 and audio.shape[1] == 2, "one stereo file: agent left, customer right"
    assert not list(result.recording_path.parent.glob("*-agent.wav")), "the two sides were merged"
    assert not list(result.recording_path.parent.glob("*.facts.json")), "the facts note is gone"
    with db.session() as s:
        row = s.get(CallRecording, result.recording_id)
        assert row is not None and row.agent == "mei" and row.attempt_id == "att-7"
        assert (row.campaign, row.elder_welfare, row.channels) == ("flu-2026", True, 2)
        assert row.sha256 and row.status.value == "ok"


def test_agent_hangs_up_first(settings: Settings, db: Database) -> None:
    make_agents(db, {"lin": SKILLS["lin"]})
    available(db, "lin")

    async def body(w: World) -> tuple[HandoverResult, World, str]:
        cid = w.customer()
        w.asterisk.when("ChannelEnteredBridge", lambda: w.later(12, lambda: hang_up_agent(w)), nth=2)
        return await w.connect(cid), w, cid

    result, w, cid = scenario(settings, db, {"lin": ANSWERS}, body)
    assert (result.outcome, result.ended_by) == ("connected", "agent")
    assert result.talk_seconds == pytest.approx(12, abs=0.2)
    assert cid in w.asterisk.destroyed, "the caller is hung up when the agent leaves"
    assert w.state("lin") == ("wrap_up", "call_ended")


def hang_up_agent(w: World) -> None:
    leg = next(c for c in w.asterisk.channels if c.startswith("agent-"))
    w.asterisk.hangup_by_callee(leg)


# ---------------------------------------------------------------- routing


def test_skilled_longest_idle_agent_is_rung(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"], "lin": SKILLS["lin"], "bo": SKILLS["bo"]})
    with db.session() as s:  # both had a call; bo's ended 40 min ago, lin's 20: bo is idle longest
        for agent, ended in (("bo", 40), ("lin", 20)):
            set_state(s, agent, "on_call", "test", since=utcnow() - timedelta(minutes=ended + 3))
            set_state(s, agent, "available", "test", since=utcnow() - timedelta(minutes=ended))
        set_state(s, "mei", "break", "lunch")  # has the skill, idle longer still, but on a break

    async def body(w: World) -> HandoverResult:
        return await w.connect(w.customer(hangup_after=5))

    result = scenario(settings, db, {"mei": ANSWERS, "lin": ANSWERS, "bo": ANSWERS}, body)
    assert result.agent == "bo" and result.agents_tried == ["bo"], "available, skilled, longest idle"


def test_a_callbacks_agent_is_offered_the_call_first(settings: Settings, db: Database) -> None:
    make_agents(db, {"lin": SKILLS["lin"], "bo": SKILLS["bo"]})
    available(db, "lin")  # no call yet: idle longest, so routing alone would ring lin
    with db.session() as s:  # bo has just finished a call
        set_state(s, "bo", "on_call", "test", since=utcnow() - timedelta(minutes=4))
        set_state(s, "bo", "available", "test", since=utcnow() - timedelta(minutes=1))

    with db.session() as s:
        chosen = choose_agent(candidates(s), "welfare")
    assert chosen is not None and chosen.agent == "lin", "without the callback, lin"

    async def body(w: World) -> HandoverResult:
        origin = CallOrigin(campaign="welfare", attempt_id="att-9", preferred_agent="bo")
        return await w.connect(w.customer(hangup_after=5), origin=origin)

    promised = scenario(settings, db, {"lin": ANSWERS, "bo": ANSWERS}, body)
    assert promised.agent == "bo" and promised.agents_tried == ["bo"], "bo promised the callback"


def test_the_caller_learns_who_took_the_call_while_it_is_on(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"]})
    available(db, "mei")
    told: list[tuple[str, bool]] = []

    async def body(w: World) -> HandoverResult:
        cid = w.customer(hangup_after=20)

        async def took(agent: str) -> None:
            told.append((agent, cid in w.asterisk.channels))
            raise RuntimeError("the ledger is away")  # a failure here never ends the conversation

        return await w.connect(cid, on_agent=took)

    result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert told == [("mei", True)], "once, when mei answered, the caller still on the line"
    assert (result.outcome, result.talk_seconds) == ("connected", pytest.approx(19.5, abs=0.2))


def test_agent_who_does_not_answer_goes_on_break_and_the_next_is_rung(
    settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": SKILLS["mei"], "lin": SKILLS["lin"]})
    available(db, "mei", "lin")  # neither has had a call: the name breaks the tie, lin first

    async def body(w: World) -> tuple[HandoverResult, World]:
        return await w.connect(w.customer(hangup_after=40), ring_timeout=8), w

    never = Callee(answer_after=None)
    result, w = scenario(settings, db, {"lin": never, "mei": ANSWERS}, body)
    assert (result.outcome, result.agent, result.agents_tried) == ("connected", "mei", ["lin", "mei"])
    assert result.wait_seconds == pytest.approx(8.5, abs=0.6), "8 s of ringing lin, then mei answers"
    assert w.state("lin") == ("break", "no_answer")
    assert w.state("mei") == ("wrap_up", "call_ended")
    lin_leg = w.asterisk.calls("originate")[0].params["channelId"]
    assert w.asterisk.destroyed.get(lin_leg) == 19, "Asterisk ended lin's unanswered leg"
    assert len(list(settings.recordings_dir.rglob("*.wav*"))) == 1, "no file left for the unanswered ring"


def test_agent_answering_after_the_ring_time_is_not_connected(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"]})
    available(db, "mei")
    late = Callee(answer_after=14, no_answer_cause=None)  # Asterisk never times it out itself

    async def body(w: World) -> tuple[HandoverResult, World]:
        return await w.connect(w.customer(), ring_timeout=8, timeout=12), w

    result, w = scenario(settings, db, {"mei": late}, body)
    assert (result.outcome, result.answered, result.agents_tried) == ("abandoned", False, ["mei"])
    assert w.state("mei") == ("break", "no_answer")
    assert not [c for c in w.asterisk.channels if c.startswith("agent-")], "the late leg was hung up"


def test_a_paced_call_stops_ringing_at_the_grace_and_the_agent_stays_available(
    settings: Settings, db: Database
) -> None:
    """The 2-second rule: the grace bounds the agent's ring too (a ring answered later than the
    grace would be a conversation that broke the rule). The agent is not put on break for it."""
    make_agents(db, {"mei": SKILLS["mei"]})
    available(db, "mei")
    slow_phone = Callee(answer_after=1.4)  # answers within answer_within (1.5 s), after the grace

    async def body(w: World) -> tuple[HandoverResult, World]:
        return await w.connect(
            w.customer(),
            timeout=1.2,
            moh=None,
            poll_every=0.1,
            ring_timeout=2,
            answer_within=1.5,
            timeout_includes_ring=True,
        ), w

    result, w = scenario(settings, db, {"mei": slow_phone}, body)
    assert (result.outcome, result.answered, result.agents_tried) == ("abandoned", False, ["mei"])
    assert result.wait_seconds == pytest.approx(1.2, abs=0.15), "given up at the grace, not at 1.5 s"
    assert w.state("mei") == ("available", "caller_timeout")
    assert not [c for c in w.asterisk.channels if c.startswith("agent-")], "the ring was hung up"


def test_ringing_an_agent_fails_and_the_next_is_tried(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"], "lin": SKILLS["lin"]})
    available(db, "mei", "lin")

    async def body(w: World) -> tuple[HandoverResult, World]:
        w.asterisk.fail("originate", 500, "Allocation failed", times=1)
        return await w.connect(w.customer(hangup_after=20)), w

    result, w = scenario(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, body)
    assert (result.outcome, result.agent, result.agents_tried) == ("connected", "mei", ["lin", "mei"])
    assert w.state("lin") == ("break", "no_answer")


# ---------------------------------------------------------------- no conversation


def test_no_agent_in_time_is_abandoned_and_the_caller_left_up(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"]})  # logged out

    async def body(w: World) -> tuple[HandoverResult, World, str]:
        cid = w.customer()
        return await w.connect(cid, timeout=20), w, cid

    result, w, cid = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.agent, result.answered, result.ended_by) == (
        "abandoned",
        None,
        False,
        "system",
    )
    assert result.wait_seconds == pytest.approx(20, abs=1.1)
    assert cid in w.asterisk.channels, "left up for the caller of connect() to end or offer a callback"
    assert w.asterisk.ops()[-1] == "stop_moh" and not w.asterisk.calls("originate")


def test_caller_hangs_up_while_waiting(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"]})

    async def body(w: World) -> tuple[HandoverResult, World]:
        return await w.connect(w.customer(hangup_after=7)), w

    result, w = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.ended_by, result.customer_cause) == ("caller_hangup", "customer", 16)
    assert result.wait_seconds == pytest.approx(7, abs=1.1)
    assert not w.asterisk.calls("originate"), "nobody was rung"


def test_caller_hangs_up_while_the_agent_rings(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"]})
    available(db, "mei")

    async def body(w: World) -> tuple[HandoverResult, World]:
        return await w.connect(w.customer(hangup_after=3)), w

    result, w = scenario(settings, db, {"mei": Callee(answer_after=None)}, body)
    assert result.outcome == "caller_hangup" and result.agents_tried == ["mei"]
    assert not w.asterisk.channels, "the agent's ringing leg was hung up too"
    assert w.state("mei") == ("available", "caller_gone"), "the agent is free again at once"
    assert not list(settings.recordings_dir.rglob("*.*")), "no recording of a call that never was"


def test_bridge_failure_is_not_a_conversation(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"]})
    available(db, "mei")

    async def body(w: World) -> tuple[HandoverResult, World]:
        w.asterisk.fail("add_channel", 500, "Channel not in Stasis application", times=1)
        return await w.connect(w.customer()), w

    result, w = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.answered) == ("error", False), "the dialer must not count it as talked"
    assert "Channel not in Stasis" in (result.error or "")
    assert not w.asterisk.channels and not w.asterisk.bridges, "both legs and the bridge are gone"


def test_recording_failure_keeps_the_conversation(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recordings import capture

    make_agents(db, {"mei": SKILLS["mei"]})
    available(db, "mei")

    def broken(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(capture, "merge_stereo", broken)

    async def body(w: World) -> HandoverResult:
        return await w.connect(w.customer(hangup_after=10))

    result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.answered, result.recording_id) == ("connected", True, None)
    assert list(settings.recordings_dir.rglob("*-agent.wav")), "the two sides stay for recovery at start-up"


# ---------------------------------------------------------------- the queue


def test_callers_are_served_in_order_and_hear_their_position(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"], "lin": SKILLS["lin"]})
    heard: dict[str, list[int]] = {"first": [], "second": []}

    def say(who: str) -> Callable[[int], Awaitable[None]]:
        async def announce(position: int) -> None:
            heard[who].append(position)

        return announce

    async def body(w: World) -> tuple[HandoverResult, HandoverResult]:
        first, second = w.customer(hangup_after=40), w.customer(hangup_after=40)
        w.later(7, lambda: available(db, "lin"))
        w.later(11, lambda: available(db, "mei"))
        return await asyncio.gather(
            w.connect(first, announce=say("first"), announce_every=5),
            w.connect(second, announce=say("second"), announce_every=5),
        )

    one, two = scenario(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, body)
    assert (one.outcome, one.agent) == ("connected", "lin"), "the first caller gets the first free agent"
    assert (two.outcome, two.agent) == ("connected", "mei")
    assert one.wait_seconds == pytest.approx(7.5, abs=1.1) and two.wait_seconds == pytest.approx(
        11.5, abs=1.1
    )
    assert heard["first"] == [1], "at the head of the queue: next"
    assert heard["second"][:1] == [2] and heard["second"][-1] == 1, "second, then next once lin is taken"


def test_priority_callers_go_ahead(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": SKILLS["mei"]})

    async def body(w: World) -> tuple[HandoverResult, HandoverResult]:
        plain, urgent = w.customer(hangup_after=30), w.customer(hangup_after=30)
        w.later(3, lambda: available(db, "mei"))
        return await asyncio.gather(w.connect(plain, timeout=10), w.connect(urgent, timeout=10, priority=5))

    plain, urgent = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (urgent.outcome, urgent.agent) == ("connected", "mei"), "an elder who pressed for help goes first"
    assert plain.outcome == "abandoned"

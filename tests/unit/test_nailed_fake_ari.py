"""Agents kept on the line (agents.handover.nailed) against the fake Asterisk, with the real
EventDispatcher, routing and state ledger (SQLite and PostgreSQL), and the nailed call's stereo
recording (agents.handover.nailed_recording) through the real capture and registry. The loop
clock is virtual."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
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
from agents.handover.nailed import NailedAgents, NailedDeps
from agents.handover.nailed_recording import MIXMON_VAR, MixMonitorRecording
from agents.routing import set_state
from agents.states import current_state
from agents.transfer.models import Transfer
from agents.transfer.service import TransferAsk, request_step, request_transfer
from core.ami import AmiClient
from core.db import Database, utcnow
from core.messages import CallEvent
from core.settings import Settings
from recordings.capture import RecordingFacts, SideTiming, StereoCapture
from recordings.models import CallRecording
from recordings.service import open_recording
from tests.fakes.ami import FakeAmi
from tests.fakes.ari import Callee, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.utils.agents import (
    FakeNode,
    available,
    endpoint_of,
    fake_node,
    make_agents,
    write_ari_recordings,
    write_mixmonitor_files,
)
from tests.utils.waiting import until

CUSTOMER = "Local/8613800138000@lab-pstn"
ANSWERS = Callee(answer_after=0.5)
PACED = QueuePolicy(
    timeout=2.0, moh=None, poll_every=0.1, ring_timeout=10, answer_within=1.5, inbound_first=True
)
ORIGIN = CallOrigin(
    campaign="flu-2026", attempt_id="att-7", contact_name="王奶奶", phone_masked="138****8000",
    fields={"clinic": "朝阳社区"},
)  # fmt: skip


@dataclass
class World:
    node: FakeNode
    nailed: NailedAgents
    handover: Handover
    db: Database
    published: list[CallEvent]
    ami: FakeAmi | None = None

    @property
    def asterisk(self) -> FakeAsterisk:
        return self.node.asterisk

    def customer(self, *, hangup_after: float | None = None) -> str:
        channel_id = f"cust-{uuid.uuid4()}"
        self.asterisk.place(channel_id, CUSTOMER, stage="stasis", callee=Callee())
        if hangup_after is not None:
            later(hangup_after, lambda: self.asterisk.hangup_by_callee(channel_id))
        return channel_id

    async def nail(self, agent: str) -> str:
        leg = await self.nailed.nail_up(agent, endpoint_of(self.db, agent).removeprefix("PJSIP/"))
        assert leg is not None
        return leg.leg

    def state(self, agent: str) -> tuple[str, str] | None:
        with self.db.session() as s:
            st = current_state(s, agent)
            return (st.state, st.reason or "") if st is not None else None

    async def connect(self, channel_id: str, **kw: Any) -> HandoverResult:
        request = HandoverRequest(channel_id, skill="welfare", origin=ORIGIN, policy=PACED, **kw)
        return await self.handover.connect(request)


def later(seconds: float, action: Callable[[], object]) -> None:
    asyncio.get_running_loop().call_later(seconds, action)


def set_agent(db: Database, agent: str, state: str) -> None:
    with db.session() as s:
        set_state(s, agent, state, "test")


@asynccontextmanager
async def world(
    settings: Settings, db: Database, callees: dict[str, Callee], *, ami: bool = False
) -> AsyncIterator[World]:
    """``ami``: the node has a manager interface too (a `FakeAmi` on loopback, writing MixMonitor's
    files), so nailed calls are recorded by MixMonitor."""
    published: list[CallEvent] = []

    async def publish(event: CallEvent) -> bool:
        published.append(event)
        return True

    async with AsyncExitStack() as stack:
        node = await stack.enter_async_context(fake_node(settings, db, callees))
        node.asterisk.on_record = write_ari_recordings(settings)
        fake_ami, client = None, None
        if ami:
            fake_ami = FakeAmi(asterisk=node.asterisk, on_mixmonitor=write_mixmonitor_files(settings))
            await stack.enter_async_context(fake_ami.running())
            client = AmiClient("127.0.0.1", fake_ami.port, fake_ami.username, fake_ami.secret)
        nailed = NailedAgents(
            NailedDeps(node.ari, node.dispatcher, db, settings, publish=publish, ami=client)
        )
        deps = HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues(), nailed=nailed)
        try:
            yield World(node, nailed, Handover(deps), db, published, fake_ami)
        finally:
            await nailed.close()


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


def scenario(
    settings: Settings,
    db: Database,
    callees: dict[str, Callee],
    body: Callable[[World], Awaitable[Any]],
    *,
    ami: bool = False,
) -> Any:
    async def main() -> Any:
        async with world(settings, db, callees, ami=ami) as w:
            return await body(w)

    return run_virtual(main())


def test_a_free_agent_is_called_once_and_kept_in_a_bridge_of_their_own(
    settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, str, str]:
        leg = await w.nail("mei")
        again = await w.nailed.nail_up("mei", "ignored")  # already nailed: no second call
        assert again is not None and again.leg == leg
        return w, leg, w.nailed.legs["mei"].bridge

    w, _leg, bridge = scenario(settings, db, {"mei": ANSWERS}, body)
    rings = w.asterisk.calls("originate")
    assert len(rings) == 1, "called once"
    assert rings[0].params["endpoint"] == endpoint_of(db, "mei")
    assert rings[0].params["appArgs"] == ["nailed", "mei"], "into Stasis, not warmline-record"
    assert [r.op for r in w.asterisk.requests if r.op in ("create_bridge", "add_channel")] == [
        "create_bridge",
        "add_channel",
    ]
    assert w.asterisk.calls("add_channel")[0].target == bridge
    assert w.state("mei") == ("available", "test"), "kept on the line, still free"


def test_a_live_callee_is_bridged_in_with_no_ringing_a_tone_and_the_screen_pop(
    settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")
    took: list[str] = []

    async def on_agent(agent: str) -> None:
        took.append(agent)

    async def body(w: World) -> tuple[World, str, str, HandoverResult]:
        leg = await w.nail("mei")
        before = len(w.asterisk.requests)
        cid = w.customer(hangup_after=20)
        result = await w.connect(cid, on_agent=on_agent)
        w.asterisk.requests[:] = w.asterisk.requests[before:]
        return w, leg, cid, result

    w, leg, cid, result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.agent, result.answered, result.ended_by) == (
        "connected",
        "mei",
        True,
        "customer",
    )
    assert result.wait_seconds < 0.05, "no ring: the verdict to the bridge is a request or two"
    assert result.talk_seconds == pytest.approx(20, abs=0.1)
    assert took == ["mei"]
    ops = [r.op for r in w.asterisk.requests if r.op != "get_channel"]
    assert "originate" not in ops and "start_moh" not in ops, "the agent's phone was not rung"
    add = w.asterisk.calls("add_channel")[0]
    assert add.params["channel"] == cid, "the callee went into the agent's bridge"
    tone = w.asterisk.calls("play")[0]
    assert tone.target == leg and str(tone.params["media"]).startswith("tone:"), "the agent hears a tone"
    stopped = w.asterisk.calls("stop_playback")
    assert [r.target for r in stopped] == [tone.path.rsplit("/", 1)[-1]], "the tone is stopped (0.4 s)"
    (pop,) = [e for e in w.published if e.kind == "screen_pop"]
    assert pop.call_id == "att-7" and pop.campaign == "flu-2026" and pop.detail["agent"] == "mei"
    fields = {k: unquote(v) for k, v in pop.detail["fields"].items()}
    assert fields["Phone"] == "138****8000" and fields["Field-Name"] == "王奶奶"
    assert fields["Field-clinic"] == "朝阳社区" and "13800138000" not in str(pop.detail)
    assert ops.index("add_channel") < ops.index("play"), "tone and pop at the bridge"


def test_the_callee_hangs_up_and_the_agent_stays_nailed(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, str, list[HandoverResult], tuple[str, str] | None]:
        leg = await w.nail("mei")
        first = await w.connect(w.customer(hangup_after=5))
        after_first = w.state("mei")
        assert w.nailed.nailed("mei") and leg in w.asterisk.channels, "the agent's leg stays up"
        available(db, "mei")  # the softphone: wrap-up done
        second = await w.connect(w.customer(hangup_after=7))
        assert w.nailed.nailed("mei") and leg in w.asterisk.channels, "still up after the second"
        return w, leg, [first, second], after_first

    w, _leg, results, after_first = scenario(settings, db, {"mei": ANSWERS}, body)
    assert [r.ended_by for r in results] == ["customer", "customer"]
    assert [r.agent for r in results] == ["mei", "mei"]
    assert after_first == ("wrap_up", "call_ended")
    assert len(w.asterisk.calls("originate")) == 1, "one call to the agent for both callees"
    assert all(r.params["channel"].startswith("cust-") for r in w.asterisk.calls("remove_channel"))


def test_while_in_wrap_up_a_nailed_agent_is_not_offered_a_callee(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[HandoverResult, HandoverResult]:
        await w.nail("mei")
        first = await w.connect(w.customer(hangup_after=5))
        second = await w.connect(w.customer())  # mei in wrap-up, nobody else: abandoned at 2 s
        return first, second

    first, second = scenario(settings, db, {"mei": ANSWERS}, body)
    assert first.outcome == "connected" and second.outcome == "abandoned"


def test_a_nailed_agent_free_again_within_the_grace_takes_the_callee(
    settings: Settings, db: Database
) -> None:
    """mei is wrapping up when the live answer comes (no agent free: the grace starts); she is
    ready 0.8 s later, inside the grace: the callee goes into her bridge then, no ring and no
    apology, and the wait (AMD's verdict to the bridge) says so."""
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> HandoverResult:
        leg = await w.nail("mei")
        await asyncio.to_thread(set_agent, db, "mei", "wrap_up")
        later(0.8, lambda: available(db, "mei"))
        result = await w.connect(w.customer(hangup_after=5))
        assert w.asterisk.channels[leg].bridge == w.nailed.legs["mei"].bridge, "still nailed"
        return result

    result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.agent, result.nailed) == ("connected", "mei", True)
    assert 0.8 <= result.wait_seconds <= 1.0, result.wait_seconds


def test_a_break_hangs_up_the_nailed_leg_and_ends_its_watcher(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[bool, bool, bool]:
        leg = await w.nail("mei")
        watcher = w.nailed.legs["mei"].watcher
        assert watcher is not None and not watcher.done()
        await w.nailed.release("mei")  # the keeper, on mei's break
        await asyncio.sleep(0.1)
        hung_up = leg in [r.target for r in w.asterisk.calls("hangup")]
        return watcher.done(), w.nailed.nailed("mei"), hung_up

    done, still, hung_up = scenario(settings, db, {"mei": ANSWERS}, body)
    assert done, "no watcher left waiting on a queue nobody feeds (destroyed pending at exit)"
    assert not still and hung_up, "the leg hung up"


def test_the_agent_hanging_up_their_leg_ends_the_nailed_state(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, str, str, HandoverResult]:
        leg = await w.nail("mei")
        bridge = w.nailed.legs["mei"].bridge
        w.asterisk.hangup_by_callee(leg)
        await until(lambda: not w.nailed.nailed("mei"), what="mei no longer nailed")
        cid = w.customer(hangup_after=5)
        result = await w.connect(cid)  # rung as before
        return w, leg, bridge, result

    w, _leg, bridge, result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert "mei" not in w.nailed.legs and bridge not in w.asterisk.bridges
    rings = w.asterisk.calls("originate")
    assert len(rings) == 2 and rings[1].params["context"] == "warmline-record", "back to ringing"
    assert result.outcome == "connected" and result.agent == "mei" and result.wait_seconds >= 0.5


def test_a_leg_lost_while_the_event_stream_was_down_is_found_at_the_reconnect(
    settings: Settings, db: Database
) -> None:
    """The agent hangs up while the websocket is down (their hang-up events are lost with it): at
    the reconnect the leg is looked up, found gone, and the agent is no longer nailed -- the next
    callee rings them instead of joining an empty bridge, where they would hear silence."""
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, str, HandoverResult]:
        leg = await w.nail("mei")
        bridge = w.nailed.legs["mei"].bridge
        w.node.ari.drop()  # the socket drops; Asterisk stays up
        w.asterisk.hangup_by_callee(leg)  # ...and says so to nobody
        await until(lambda: not w.nailed.nailed("mei"), what="mei no longer nailed after the reconnect")
        cid = w.customer(hangup_after=5)
        return w, bridge, await w.connect(cid)

    w, bridge, result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert bridge not in w.asterisk.bridges, "the empty holding bridge is destroyed"
    rings = w.asterisk.calls("originate")
    assert len(rings) == 2 and rings[1].params["context"] == "warmline-record", "rung as before"
    assert result.outcome == "connected" and result.agent == "mei"


def test_a_leg_still_up_at_the_reconnect_stays_nailed(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, HandoverResult]:
        leg = await w.nail("mei")
        looked = len(w.asterisk.requests)
        w.node.ari.drop()
        await until(lambda: len(w.asterisk.requests) > looked, what="the leg looked up")
        await asyncio.sleep(1)
        assert w.nailed.nailed("mei"), "still on the line"
        cid = w.customer(hangup_after=5)
        result = await w.connect(cid)
        assert leg in w.asterisk.channels, "the leg was not hung up"
        return w, result

    w, result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert result.nailed and result.agent == "mei", "bridged with no ring"
    assert len(w.asterisk.calls("originate")) == 1


def test_after_an_asterisk_restart_no_agent_is_left_nailed(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"]})
    available(db, "mei", "lin")

    async def body(w: World) -> World:
        await w.nail("mei")
        await w.nail("lin")
        w.asterisk.restart()  # legs and bridges gone without a word, then WarmlineReconnected
        await until(lambda: not w.nailed.legs, what="no agent left nailed")
        return w

    w = scenario(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, body)
    assert not w.asterisk.bridges and not w.asterisk.channels


def test_the_agent_hanging_up_mid_call_ends_the_call_and_the_nailed_state(
    settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, str, HandoverResult]:
        leg = await w.nail("mei")
        cid = w.customer()
        later(8, lambda: w.asterisk.hangup_by_callee(leg))
        return w, cid, await w.connect(cid)

    w, cid, result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.ended_by) == ("connected", "agent")
    assert result.talk_seconds == pytest.approx(8, abs=0.1)
    assert cid in w.asterisk.destroyed and not w.nailed.legs
    assert w.state("mei") == ("wrap_up", "call_ended")


def test_with_no_nailed_agent_free_the_agent_is_rung(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"]})
    available(db, "mei", "lin")

    async def body(w: World) -> tuple[World, list[HandoverResult]]:
        await w.nail("mei")
        first = w.connect(w.customer(hangup_after=10))
        second = w.connect(w.customer(hangup_after=10))  # mei is busy with the first: lin is rung
        return w, list(await asyncio.gather(first, second))

    w, results = scenario(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, body)
    assert sorted(r.agent or "" for r in results) == ["lin", "mei"]
    rings = w.asterisk.calls("originate")
    assert [r.params.get("context") for r in rings] == [None, "warmline-record"]
    assert rings[1].params["endpoint"] == endpoint_of(db, "lin")
    assert "lin" not in w.nailed.legs


# ---------------------------------------------------------------- the nailed call's recording


def stereo_of(settings: Settings, db: Database, rec_id: str) -> tuple[CallRecording, Any]:
    with db.session() as s:
        row = s.get(CallRecording, rec_id)
        assert row is not None
        s.expunge(row)
        with open_recording(settings, row) as f:
            audio, rate = sf.read(f, dtype="int16")
    assert rate == 8000 and audio.shape[1] == 2
    return row, audio


def tone_hz(samples: Any) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    return float(np.argmax(spectrum) * 8000 / len(samples))


def test_a_nailed_call_is_recorded_in_stereo_by_two_snoops_on_the_callee(
    settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, str, HandoverResult]:
        await w.nail("mei")
        cid = w.customer(hangup_after=20)
        request = HandoverRequest(
            cid, skill="welfare", origin=replace(ORIGIN, elder_welfare=True, campaign_id=None), policy=PACED
        )
        return w, cid, await w.handover.connect(request)

    w, cid, result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert result.outcome == "connected" and result.recording_id is not None
    snoops = w.asterisk.calls("snoop")
    assert [(r.target, r.params["spy"]) for r in snoops] == [(cid, "out"), (cid, "in")], (
        "what the callee hears (the agent) and what the callee says"
    )
    names = sorted(str(r.params["name"]) for r in w.asterisk.calls("record_channel"))
    assert [n.rsplit("-", 1)[-1] for n in names] == ["agent", "customer"]
    assert names[0].removesuffix("-agent") == names[1].removesuffix("-customer"), "one call's two sides"
    snoop_ids = {r.path.rsplit("/", 1)[-1] for r in snoops}
    assert snoop_ids <= set(w.asterisk.destroyed) and not w.asterisk.recordings, "snoops and recordings ended"
    row, audio = stereo_of(settings, db, result.recording_id)
    assert (tone_hz(audio[:, 0]), tone_hz(audio[:, 1])) == (700, 300), "agent left, callee right"
    assert (row.agent, row.campaign, row.attempt_id, row.elder_welfare) == ("mei", "flu-2026", "att-7", True)
    assert row.source == "agent-bridge" and row.channels == 2 and row.sha256 and row.encrypted
    assert result.recording_path is not None and result.recording_path.name.endswith(".wav.enc")
    assert [p.name for p in settings.recordings_dir.resolve().rglob("*.*")] == [result.recording_path.name], (
        "no side, facts note or plain copy left"
    )
    assert not any(s in w.node.dispatcher for s in snoop_ids), "the snoops' subscriptions are gone"


def test_each_nailed_call_has_its_own_recording_and_the_agent_hanging_up_ends_it(
    settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> list[HandoverResult]:
        leg = await w.nail("mei")
        first = await w.connect(w.customer(hangup_after=5))
        available(db, "mei")
        cid = w.customer()
        later(8, lambda: w.asterisk.hangup_by_callee(leg))
        return [first, await w.connect(cid)]

    results = scenario(settings, db, {"mei": ANSWERS}, body)
    assert [r.ended_by for r in results] == ["customer", "agent"]
    ids = [r.recording_id for r in results]
    assert None not in ids and len(set(ids)) == 2, "one recording per callee on the same leg"
    with db.session() as s:
        assert s.query(CallRecording).count() == 2


@pytest.mark.parametrize("op", ["snoop", "record_channel"])
def test_a_refused_recording_leaves_the_call_going_and_no_files(
    op: str, settings: Settings, db: Database
) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, HandoverResult]:
        await w.nail("mei")
        w.asterisk.fail(op, 500, "Internal Server Error")
        return w, await w.connect(w.customer(hangup_after=10))

    w, result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.ended_by, result.recording_id) == ("connected", "customer", None)
    assert result.talk_seconds == pytest.approx(10, abs=0.1), "the call went on"
    assert not list(settings.recordings_dir.resolve().rglob("*.*")), "no half recording left"
    with db.session() as s:
        assert s.query(CallRecording).count() == 0
    live = [c for c in w.asterisk.channels if c.startswith("nailed-rec-")]
    assert not live and not w.asterisk.recordings, "no snoop or recording left running"


def test_a_snoop_that_never_enters_the_app_is_given_up(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> HandoverResult:
        await w.nail("mei")
        w.asterisk.enter_stasis = lambda *a, **k: None  # type: ignore[method-assign]
        return await w.connect(w.customer(hangup_after=10))

    result = scenario(settings, db, {"mei": ANSWERS}, body)
    assert (result.outcome, result.recording_id) == ("connected", None)
    assert not list(settings.recordings_dir.resolve().rglob("*.*"))


# ---------------------------------------------------------------- ... by MixMonitor over AMI


def test_a_nailed_call_is_recorded_by_mixmonitor_on_the_callee_over_ami(
    settings: Settings, db: Database
) -> None:
    """With AMI, MixMonitor on the callee's channel: r() what the callee says (right), t() what
    they are sent, the agent (left); its id named in a channel variable, stopped at the end; no
    snoop. The stereo file is the callee's bridged span, registered as a rung call's."""
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, str, HandoverResult]:
        await w.nail("mei")
        cid = w.customer(hangup_after=20)
        return w, cid, await w.connect(cid)

    w, cid, result = scenario(settings, db, {"mei": ANSWERS}, body, ami=True)
    assert w.ami is not None
    assert result.outcome == "connected" and result.recording_id is not None
    assert result.recording_via == "mixmonitor"
    assert not w.asterisk.calls("snoop") and not w.asterisk.calls("record_channel"), "no snoop"
    assert w.ami.names() == ["Login", "MixMonitor", "StopMixMonitor", "Logoff"]
    start, stop = w.ami.actions[1], w.ami.actions[2]
    assert start["Channel"] == cid and "File" not in start, "the two sides only, no mixed file"
    [monitor] = w.ami.monitors.values()
    assert monitor.read_file and monitor.write_file
    assert monitor.read_file.removesuffix("-customer.wav") == monitor.write_file.removesuffix("-agent.wav")
    assert start["Options"].endswith(f"i({MIXMON_VAR})")
    assert (stop["Channel"], stop["MixMonitorID"]) == (cid, monitor.monitor_id)
    assert not monitor.running, "gone with the callee"
    row, audio = stereo_of(settings, db, result.recording_id)
    assert (tone_hz(audio[:, 0]), tone_hz(audio[:, 1])) == (700, 300), "agent left, callee right"
    # The callee hung up as the conversation's 5 s check looked (20 s into the call: on the virtual
    # clock, the same instant): the check found them gone before their hang-up's events were read,
    # and waited for them, so the file is the 20 s bridged span, MixMonitor's 1 s of each side
    # together at its end (they end with the callee).
    assert audio.shape[0] == 20 * 8000, "the callee's bridged span"
    assert not audio[: 19 * 8000].any() and audio[19 * 8000 :, 0].any(), "both sides at the span's end"
    assert (row.agent, row.campaign, row.attempt_id) == ("mei", "flu-2026", "att-7")
    assert row.source == "agent-bridge" and row.channels == 2 and row.encrypted
    assert [p.name for p in settings.recordings_dir.resolve().rglob("*.*")] == [result.recording_path.name]


def test_a_callee_found_gone_before_their_hang_up_is_read_still_ends_the_span_at_it(
    settings: Settings, db: Database
) -> None:
    """The event socket runs 0.3 s behind (a busy server) and the callee hangs up 0.1 s before
    the conversation's check: the check finds the channel gone with its events still on the way.
    The conversation waits for them (at most LATE_HANGUP_S), so the recording is the bridged span
    to the hang-up on Asterisk's clock (fresh run 1, load 9: a nailed call's recording had no span
    end, and the lab's check of where each side sits failed)."""
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> HandoverResult:
        await w.nail("mei")
        cid = w.customer()

        def hang_up_behind_the_socket() -> None:
            w.node.ari.lag = 0.3
            w.asterisk.hangup_by_callee(cid)

        later(19.9, hang_up_behind_the_socket)  # the check looks at 20.0 (4 x POLL after the bridge)
        return await w.connect(cid)

    result = scenario(settings, db, {"mei": ANSWERS}, body, ami=True)
    assert result.outcome == "connected" and result.recording_id is not None
    _, audio = stereo_of(settings, db, result.recording_id)
    assert audio.shape[0] == pytest.approx(19.9 * 8000, abs=8), "the span ends at the hang-up"


def test_two_calls_that_sound_the_same_each_have_their_own_recording(
    settings: Settings, db: Database
) -> None:
    """Two callees of one agent, each 20 s, MixMonitor writing the same audio for both (as a lab
    agent's steady tone and a callee's fixed script can, to the sample): each call's recording is
    registered under its own id with its own attempt. The registry took the second for a copy of
    the first (the same checksum) and returned the first's row: the second attempt had no
    recording row and its plain stereo file was left unencrypted (nailed lab, main at 8c43f9e)."""
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> list[HandoverResult]:
        await w.nail("mei")
        results = []
        for attempt in ("att-1", "att-2"):
            request = HandoverRequest(
                w.customer(hangup_after=20),
                skill="welfare",
                origin=replace(ORIGIN, attempt_id=attempt),
                policy=PACED,
            )
            results.append(await w.handover.connect(request))
            available(db, "mei")
        return results

    results = scenario(settings, db, {"mei": ANSWERS}, body, ami=True)
    assert [r.recording_via for r in results] == ["mixmonitor", "mixmonitor"]
    rows = [stereo_of(settings, db, str(r.recording_id)) for r in results]
    assert np.array_equal(rows[0][1], rows[1][1]), "the same audio, to the sample"
    assert [row.attempt_id for row, _ in rows] == ["att-1", "att-2"], "each call its own row"
    stored = sorted(p.name for p in settings.recordings_dir.resolve().rglob("*.*"))
    assert stored == sorted(str(r.recording_path.name) for r in results if r.recording_path), (
        "both encrypted, no plain copy left"
    )


def test_a_callee_handed_on_has_their_mixmonitor_stopped_by_its_id(settings: Settings, db: Database) -> None:
    """The callee leaves the agent's bridge alive (a blind transfer): StopMixMonitor names their
    channel and this MixMonitor's id, and Asterisk stops it."""
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"]})
    available(db, "mei", "lin")

    async def body(w: World) -> tuple[World, HandoverResult]:
        await w.nail("mei")
        cid = w.customer()
        call = asyncio.create_task(w.connect(cid))
        await until(lambda: w.nailed.legs["mei"].callee == cid, what="the callee with mei")
        ask(db, "blind")
        await until(lambda: the_transfer(db).state == "completed", what="handed to lin")
        later(5, lambda: w.asterisk.hangup_by_callee(cid))
        return w, await call

    w, _result = scenario(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, body, ami=True)
    assert w.ami is not None
    stops = [a for a in w.ami.actions if a.get("Action") == "StopMixMonitor"]
    mei_monitor = next(iter(w.ami.monitors.values()))
    assert stops and stops[0]["MixMonitorID"] == mei_monitor.monitor_id
    assert not mei_monitor.running
    with db.session() as s:
        mine = s.scalar(select(CallRecording).where(CallRecording.agent == "mei"))
        assert mine is not None, "mei's part of the call recorded"


@pytest.mark.parametrize("trouble", ["refused", "down"])
def test_when_ami_fails_the_call_is_recorded_by_snoops_instead(
    trouble: str, settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """MixMonitor refused, or AMI not there: the snoops record the call as before, and the result
    (the attempt's detail) says so; no MixMonitor file is left behind."""
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")

    async def body(w: World) -> tuple[World, HandoverResult]:
        assert w.ami is not None
        await w.nail("mei")
        if trouble == "refused":
            w.ami.refuse("MixMonitor", "Could not start monitoring channel")
        else:
            await w.ami.stop()
        return w, await w.connect(w.customer(hangup_after=10))

    w, result = scenario(settings, db, {"mei": ANSWERS}, body, ami=True)
    assert result.recording_via == "snoop" and result.recording_id is not None
    assert len(w.asterisk.calls("snoop")) == 2
    _row, audio = stereo_of(settings, db, result.recording_id)
    assert (tone_hz(audio[:, 0]), tone_hz(audio[:, 1])) == (700, 300)
    assert "by snoops instead" in caplog.text
    assert w.ami is not None and not w.ami.monitors


def the_transfer(db: Database) -> Transfer:
    with db.session() as s:
        row = s.scalar(select(Transfer).order_by(Transfer.requested_at.desc()))
        assert row is not None
        s.expunge(row)
        return row


def ask(db: Database, mode: str) -> str:
    with db.session() as s:
        return request_transfer(s, TransferAsk("mei", "att-7", "agent", "lin", mode), utcnow()).id


@pytest.mark.parametrize("mode", ["blind", "attended"])
def test_a_nailed_agent_transfers_and_goes_back_to_her_holding_bridge(
    settings: Settings, db: Database, mode: str
) -> None:
    """mei (nailed) has the callee and hands them to lin (nailed too): lin's held leg is hung up
    and her phone rung; the caller joins lin in a bridge of the call's own; mei's leg is back
    alone in her holding bridge, still nailed, free, and takes the next callee there."""
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"]})
    available(db, "mei")
    available(db, "lin")

    async def body(w: World) -> dict[str, Any]:
        leg = await w.nail("mei")
        await w.nail("lin")
        home = w.nailed.legs["mei"].bridge
        cid = w.customer(hangup_after=30)
        origin = replace(ORIGIN, preferred_agent="mei")
        call = asyncio.create_task(
            w.handover.connect(HandoverRequest(cid, "welfare", origin=origin, policy=PACED))
        )
        await until(lambda: w.nailed.legs["mei"].callee == cid, 5, what="mei has the callee")
        xfer = await asyncio.to_thread(ask, db, mode)
        seen: dict[str, Any] = {"leg": leg, "home": home, "cid": cid}
        if mode == "attended":
            await until(lambda: the_transfer(db).state == "consulting", 10, what="consulting")
            seen["home_while_consulting"] = list(w.asterisk.bridges[home].channels)
            with db.session() as s:
                request_step(s, "mei", xfer, "complete", utcnow())
        await until(lambda: the_transfer(db).state == "completed", 10, what="completed")
        await until(lambda: w.nailed.legs["mei"].callee is None, 5, what="mei free again")
        seen["home_after"] = list(w.asterisk.bridges[home].channels)
        seen["mei_after"] = w.state("mei")
        seen["lin_nailed"] = w.nailed.nailed("lin")
        seen["caller_bridge"] = w.asterisk.channels[cid].bridge
        second = w.customer(hangup_after=5)
        seen["second"] = await w.connect(second)  # mei, on the same leg, in the same bridge
        seen["second_in"] = [
            r.target for r in w.asterisk.calls("add_channel") if r.params["channel"] == second
        ]
        seen["first"] = await call
        seen["lin_after"] = w.state("lin")
        seen["legs_hung_up"] = [r.target for r in w.asterisk.calls("hangup")]
        return seen

    seen = scenario(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, body)
    row = the_transfer(db)
    assert (row.state, row.result, row.to_agent, row.mode) == ("completed", "answered", "lin", mode)
    if mode == "attended":
        assert seen["home_while_consulting"] == [], "mei consults lin outside her holding bridge"
    assert seen["home_after"] == [seen["leg"]], "mei alone in her holding bridge again"
    assert seen["caller_bridge"] not in (None, seen["home"]), "the caller and lin in a bridge of their own"
    assert seen["mei_after"] == ("available", "transferred")
    assert not seen["lin_nailed"], "lin's held leg was hung up for the ring"
    assert seen["leg"] not in seen["legs_hung_up"], "mei's leg is never hung up"
    assert (seen["second"].agent, seen["second_in"]) == ("mei", [seen["home"]]), "the next callee to mei"
    first = seen["first"]
    assert (first.outcome, first.agent, first.ended_by) == ("connected", "lin", "customer")
    assert seen["lin_after"] == ("wrap_up", "call_ended"), "the call and its wrap-up are lin's"


@pytest.mark.parametrize("lin_free_after", [0.0, 6.0])
def test_a_nailed_agent_blind_transfers_to_a_queue_goes_home_and_another_agent_takes_the_caller(
    settings: Settings, db: Database, lin_free_after: float
) -> None:
    """mei (nailed) hands the callee to the welfare queue, blind: her leg goes back alone to her
    holding bridge, she is available at once (and takes the next callee there), and the caller
    waits in the queue -- never offered back to mei, who handed them on -- until lin, nailed too,
    is free: at once, or 6 s later (past a paced call's grace: the caller now waits as a queue's
    caller does, with music). The caller joins lin in her holding bridge, no ring, and the
    transfer is lin's."""
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"]})
    available(db, "mei")
    available(db, "lin", idle_minutes={"lin": 5})

    async def body(w: World) -> dict[str, Any]:
        leg = await w.nail("mei")
        await w.nail("lin")
        home, lins = w.nailed.legs["mei"].bridge, w.nailed.legs["lin"].bridge
        if lin_free_after:
            await asyncio.to_thread(set_agent, db, "lin", "on_call")  # on a call of her own
        cid = w.customer(hangup_after=40)
        origin = replace(ORIGIN, preferred_agent="mei")
        call = asyncio.create_task(
            w.handover.connect(HandoverRequest(cid, "welfare", origin=origin, policy=PACED))
        )
        await until(lambda: w.nailed.legs["mei"].callee == cid, 5, what="mei has the callee")

        def ask_queue() -> str:
            with db.session() as s:
                ask = TransferAsk("mei", "att-7", "queue", "welfare", "blind")
                return request_transfer(s, ask, utcnow()).id

        await asyncio.to_thread(ask_queue)
        await until(lambda: w.nailed.legs["mei"].callee is None, 5, what="mei free again")
        seen: dict[str, Any] = {"leg": leg, "home": home, "lins": lins, "cid": cid}
        seen["home_after"] = list(w.asterisk.bridges[home].channels)
        seen["mei_after"] = w.state("mei")
        if lin_free_after:
            await asyncio.sleep(lin_free_after / 2)
            seen["waiting"] = (w.asterisk.channels[cid].bridge, w.asterisk.channels[cid].moh)
            seen["state_waiting"] = the_transfer(db).state
            await asyncio.sleep(lin_free_after / 2)
            await asyncio.to_thread(set_agent, db, "lin", "available")
        await until(lambda: w.nailed.legs["lin"].callee == cid, 10, what="lin has the caller")
        seen["caller_bridge"] = w.asterisk.channels[cid].bridge
        seen["moh_with_lin"] = w.asterisk.channels[cid].moh
        seen["rung"] = [r.params.get("endpoint") for r in w.asterisk.calls("originate")]
        seen["first"] = await call
        seen["lin_after"] = w.state("lin")
        seen["lin_nailed"] = w.nailed.nailed("lin")
        seen["legs_hung_up"] = [r.target for r in w.asterisk.calls("hangup")]
        second = w.customer(hangup_after=5)
        seen["second"] = await w.connect(second)  # mei, on the same leg, in the same bridge
        seen["second_in"] = [
            r.target for r in w.asterisk.calls("add_channel") if r.params["channel"] == second
        ]
        return seen

    seen = scenario(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, body)
    row = the_transfer(db)
    assert (row.kind, row.mode, row.state, row.result, row.to_agent) == (
        "queue", "blind", "completed", "answered", "lin"
    )  # fmt: skip
    assert seen["home_after"] == [seen["leg"]], "mei alone in her holding bridge again"
    assert seen["mei_after"] == ("available", "transferred")
    if lin_free_after:
        assert seen["waiting"] == (None, "default"), "the caller waits in the queue with music"
        assert seen["state_waiting"] == "ringing", "the transfer waits for an agent of the queue"
    assert seen["caller_bridge"] == seen["lins"], "into lin's holding bridge: no ring"
    assert seen["moh_with_lin"] is None, "the music stops when lin has the caller"
    assert len(seen["rung"]) == 2, ("only the two nailing calls: nobody rung", seen["rung"])
    first = seen["first"]
    assert (first.outcome, first.agent, first.ended_by) == ("connected", "lin", "customer")
    assert seen["lin_after"] == ("wrap_up", "call_ended") and seen["lin_nailed"], "lin wraps up, still nailed"
    assert seen["leg"] not in seen["legs_hung_up"], "mei's leg is never hung up"
    assert (seen["second"].agent, seen["second_in"]) == ("mei", [seen["home"]]), "the next callee to mei"


def test_mixmonitor_files_are_placed_where_the_mixmonitor_began_in_the_span(tmp_path: Path) -> None:
    """Both files begin together at the MixMonitor's start (its ChannelVarset) within the callee's
    bridged span; with the start unknown, at 0 (the merge puts them to end with the span); with
    the span's start unknown, no placement (the merge aligns their ends)."""
    entered = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    capture = StereoCapture.plan(tmp_path, now=entered)
    recording = MixMonitorRecording(None, None, capture, RecordingFacts(), "cust-1", "0x1")  # type: ignore[arg-type]
    began, left = entered + timedelta(milliseconds=12), entered + timedelta(seconds=30)
    assert recording.timing(entered, left, began) == SideTiming(0.012, 0.012, 30.0)
    assert recording.timing(entered, left, None) == SideTiming(0.0, 0.0, 30.0)
    assert recording.timing(entered, None, began) == SideTiming(0.012, 0.012, None)
    assert recording.timing(None, left, began) is None


def test_without_its_channelvarset_a_mixmonitor_is_placed_by_our_clock(tmp_path: Path) -> None:
    """An Asterisk told not to send ChannelVarset (core.ari_events.UNUSED_EVENTS): the time from
    the bridge's answer to MixMonitor's reply stands in for its start."""
    entered = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    capture = StereoCapture.plan(tmp_path, now=entered)
    facts = RecordingFacts()
    recording = MixMonitorRecording(None, None, capture, facts, "c", "0x1", after_bridge_s=0.04)  # type: ignore[arg-type]
    left = entered + timedelta(seconds=30)
    assert recording.timing(entered, left, None) == SideTiming(0.04, 0.04, 30.0)

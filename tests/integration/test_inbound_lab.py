"""The inbound hotline against the real lab: a call through the ``lab-inbound`` context hears the
menu, presses a key and reaches a skilled agent (bridged, recorded); after hours the caller leaves
a callback request with a message Asterisk records. Every other branch (9 for a callback, a full
queue, a caller who leaves, an unserved number) is proven on the fake Asterisk in
tests/unit/test_hotline_fake_ari.py.

The caller is the originating half of a ``Local/<number>@lab-inbound`` channel, put into the
Stasis app too so the test can press keys on it; the other half enters Stasis with
``inbound,<number>``, reaches nobody's subscription and is served by ``dialer.inbound`` through
the dispatcher's ``unrouted`` callback -- exactly as the dialer runtime wires it. Same lab and
agents as test_bridge_lab, started again for this module on its own ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from agents.states import current_state
from core.ari import AriClient
from core.ari_events import ChannelEvents, EventDispatcher
from core.db import Database
from core.features import ServiceContext, StasisContext
from core.settings import Settings
from dialer.models import Contact
from hotline.config import InboundConfig, InboundNumber
from hotline.models import InboundCallRecord
from hotline.service import INBOUND_ARG, Hotline, InboundResult
from ivr.check import load_flow
from ivr.runner import prepare_prompts
from ivr.tts import PromptCache, wav_seconds
from recordings.models import CallRecording
from tests.integration import test_bridge_lab as bridge
from tests.integration.test_bridge_lab import client, make_available
from tests.lab import lab_ports
from workforce.forecast import forecast

pytestmark = pytest.mark.integration
# The bridge module's lab, database and baresip agents, set up again for this module.
lab = bridge.lab
db = bridge.db
agents = bridge.agents
PORTS = lab_ports("inbound")
HOTLINE = "12345"
WEEKDAY_10AM = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai: open
CALLER_ID = "13800138001"
REPO = Path(__file__).resolve().parents[2]
OPEN = InboundConfig(
    timezone="Asia/Shanghai",
    numbers={
        HOTLINE: InboundNumber(
            name="community-hotline", hours={"daily": ["00:00-23:59"]}, queue_timeout=30, announce_every=10
        )
    },
)
CLOSED = InboundConfig(
    timezone="Asia/Shanghai",
    numbers={
        HOTLINE: InboundNumber(
            name="community-hotline", hours={"mon-fri": ["08:30-17:30"]}, closed_dates=[date(2026, 10, 1)]
        )
    },
)


@dataclass
class World:
    ari: AriClient
    dispatcher: EventDispatcher
    calls: Hotline
    prompts: PromptCache


@contextlib.asynccontextmanager
async def hotline(
    settings: Settings,
    database: Database,
    config: InboundConfig,
    *,
    now: Callable[[], datetime] = lambda: WEEKDAY_10AM,
) -> AsyncIterator[World]:
    """The hotline served as `warmline up` serves it: an inbound call's StasisStart reaches nobody's
    subscription and goes to the handler registered for ``inbound`` (the dialer worker's router)."""
    async with client(settings) as ari:
        served = Hotline(config, now=now)
        tasks: set[asyncio.Task[None]] = set()

        def unrouted(event: dict[str, object]) -> None:
            args = event.get("args")
            channel = event.get("channel")
            if event.get("type") == "StasisStart" and isinstance(args, list) and args[:1] == [INBOUND_ARG]:
                assert isinstance(channel, dict)
                dispatcher.subscribe(str(channel["id"]))
                ctx = StasisContext("lab", ari, dispatcher, ServiceContext(settings, database, None))
                task = asyncio.ensure_future(served.on_stasis_start(ctx, event))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        dispatcher = EventDispatcher(unrouted=unrouted)
        prompts = PromptCache.for_var_dir(settings.var_dir)
        pump = asyncio.create_task(dispatcher.run(ari.events()))
        try:
            await asyncio.wait_for(dispatcher.connected.wait(), 10)
            yield World(ari, dispatcher, served, prompts)
        finally:
            pump.cancel()
            for task in (pump, *tasks):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def call_in(world: World) -> tuple[str, ChannelEvents]:
    """Dial the hotline from a lab caller; returns the caller's own channel and its events."""
    caller = f"caller-{uuid.uuid4()}"
    events = world.dispatcher.subscribe(caller)
    await world.ari.originate(
        f"Local/{HOTLINE}@lab-inbound", channel_id=caller, app_args="caller", caller_id=CALLER_ID, timeout=15
    )
    assert await events.wait_for(lambda e: e.get("type") == "StasisStart", timeout=15)
    await world.ari.answer(caller)
    return caller, events


async def seconds_of(world: World, flow_name: str, node: str) -> float:
    """How long a flow's prompt lasts (rendered ahead, cached), to press keys when a person would."""
    flow = load_flow(REPO / "config" / "ivr" / f"{flow_name}.yaml")
    await prepare_prompts(flow, {}, world.prompts)
    prompt = next(p for node_id, _where, p in flow.all_prompts() if node_id == node)
    return wav_seconds(await world.prompts.speak(str(prompt.say), flow.voice))


async def finished(world: World, timeout: float = 60) -> InboundResult:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not world.calls.results:
        assert time.monotonic() < deadline, "the inbound handler finished"
        await asyncio.sleep(0.2)
    return world.calls.results[-1]


def test_menu_key_1_reaches_the_vaccination_agent(
    lab: Settings, db: Database, agents: dict[str, object]
) -> None:
    make_available(db, "mei", "lin")

    async def scenario() -> InboundResult:
        async with hotline(lab, db, OPEN) as world:
            welcome = await seconds_of(world, "hotline_menu", "welcome")
            caller, _events = await call_in(world)
            await asyncio.sleep(welcome + 2.0)  # the menu is playing: press 1 (barge-in)
            await world.ari.send_dtmf(caller, "1")
            deadline = time.monotonic() + 30
            while True:  # routing reserves mei (on_call) and rings her; baresip answers at once
                with db.session() as s:
                    st = current_state(s, "mei")
                if st is not None and st.state == "on_call":
                    break
                assert time.monotonic() < deadline, "mei was rung"
                await asyncio.sleep(0.3)
            await asyncio.sleep(2)
            await world.ari.play(caller, "sound:warmline/lab-talk")
            await asyncio.sleep(5)
            await world.ari.hangup(caller)
            return await finished(world)

    result = asyncio.run(scenario())
    assert result.open and result.line == "community-hotline"
    assert result.flow is not None and result.flow.digits == {"menu": "1"}
    assert result.outcome == "agent", result
    assert result.bridge is not None and result.bridge.agent == "mei", "only mei has the vaccination skill"
    assert result.bridge.recording_path is not None and result.bridge.recording_path.exists()
    with db.session() as s:
        row = s.get(CallRecording, result.bridge.recording_id)
        assert row is not None and row.agent == "mei" and row.campaign_id is None
        # The call is kept for staffing forecasts, and next week's forecast counts it: one call in
        # that half hour over the 4 weeks before it.
        record = s.get(InboundCallRecord, result.channel_id)
        assert record is not None and (record.queued, record.agent) == (True, "mei") and record.talk_s > 0
        arrived = record.arrived_at.astimezone(ZoneInfo("Asia/Shanghai"))
        next_monday = arrived.date() + timedelta(days=7 - arrived.weekday())
        [slot] = forecast(s, OPEN, "community-hotline", next_monday)["slots"]
        assert (slot["calls"], slot["aht_s"], slot["agents"]) == (0.25, round(record.talk_s, 1), 1)


def test_after_hours_leaves_a_callback_with_a_message(
    lab: Settings, db: Database, agents: dict[str, object]
) -> None:
    async def scenario() -> InboundResult:
        # National Day, a public holiday: closed whatever the machine's clock says.
        holiday = datetime(2026, 10, 1, 3, 0, tzinfo=UTC)
        async with hotline(lab, db, CLOSED, now=lambda: holiday) as world:
            closed = await seconds_of(world, "after_hours", "closed")
            caller, _events = await call_in(world)
            await asyncio.sleep(closed + 2.0)  # "press 1 for a callback" is playing
            await world.ari.send_dtmf(caller, "1")
            message_prompt = await seconds_of(world, "after_hours", "message")
            await asyncio.sleep(message_prompt + 1.5)  # after the beep: speak, then #
            await world.ari.play(caller, "sound:warmline/lab-hello")
            await asyncio.sleep(3)
            await world.ari.send_dtmf(caller, "#")
            return await finished(world)

    result = asyncio.run(scenario())
    assert not result.open
    assert result.flow is not None and result.flow.flow == "after_hours"
    assert result.outcome == "callback", result
    assert result.flow.recording is not None
    with db.session() as s:
        contacts = list(s.scalars(select(Contact).where(Contact.id == result.callback_contact_id)))
        assert len(contacts) == 1
        assert contacts[0].fields["reason"] == "after_hours"
        assert contacts[0].fields["message"] == result.flow.recording

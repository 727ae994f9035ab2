"""The fake Asterisk answers and reports as the real one does, and its loop clock is virtual.

These pin down what tests/unit/test_call_fake_ari.py and test_reconcile_fake_ari.py rely on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from core.ari import CONNECTED, RECONNECTED, AriError
from core.ari_events import ChannelEvents, EventDispatcher
from tests.fakes.ari import BUSY, CONGESTION, NO_ANSWER, Callee, FakeAri, FakeAsterisk, settle
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts

JSON = dict[str, Any]
ENDPOINT = "Local/13900000001@lab-pstn"


@asynccontextmanager
async def connected(asterisk: FakeAsterisk) -> AsyncIterator[tuple[FakeAri, EventDispatcher]]:
    """A client whose events the real dispatcher pumps, connected."""
    ari = asterisk.client()
    dispatcher = EventDispatcher()
    pump = asyncio.create_task(dispatcher.run(ari.events()))
    await dispatcher.connected.wait()
    try:
        yield ari, dispatcher
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


async def next_of(events: ChannelEvents, kind: str) -> JSON:
    event = await events.wait_for(lambda e: e.get("type") == kind, timeout=600)
    assert event is not None, f"no {kind}"
    return event


def virtual(scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await scenario()

    run_virtual(main())


def test_originate_rings_answers_into_stasis_and_hangup_ends_with_cause_16() -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(default=Callee(answer_after=3.0))
        async with connected(asterisk) as (ari, dispatcher):
            events = dispatcher.subscribe("c1")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            made = await ari.originate(ENDPOINT, channel_id="c1", app_args=["dialer", "x"], timeout=20)
            assert made["id"] == "c1" and made["state"] == "Down"
            start = await next_of(events, "StasisStart")
            assert start["args"] == ["dialer", "x"] and start["channel"]["state"] == "Up"
            assert loop.time() - t0 == pytest.approx(3.0)
            channel = await ari.get_channel("c1")
            assert channel["dialplan"]["app_name"] == "Stasis"
            await ari.hangup("c1")
            destroyed = await next_of(events, "ChannelDestroyed")
            assert destroyed["cause"] == 16
            with pytest.raises(AriError) as gone:
                await ari.get_channel("c1")
            assert gone.value.status == 404
        assert asterisk.history("c1") == [
            "ChannelStateChange",  # Ringing
            "ChannelStateChange",  # Up
            "StasisStart",
            "ChannelHangupRequest",
            "StasisEnd",
            "ChannelDestroyed",
        ]
        assert asterisk.ops() == ["originate", "get_channel", "hangup", "get_channel"]
        originate = asterisk.calls("originate")[0]
        assert originate.params["endpoint"] == ENDPOINT and originate.params["timeout"] == 20

    virtual(scenario)


@pytest.mark.parametrize(
    ("callee", "cause", "after"), [(BUSY, 17, 0.0), (CONGESTION, 34, 0.0), (NO_ANSWER, 19, 25.0)]
)
def test_unanswered_calls_end_with_their_cause_and_never_enter_stasis(
    callee: Callee, cause: int, after: float
) -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(callees={ENDPOINT: callee})
        async with connected(asterisk) as (ari, dispatcher):
            events = dispatcher.subscribe("c1")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await ari.originate(ENDPOINT, channel_id="c1", timeout=25)
            assert (await next_of(events, "ChannelDestroyed"))["cause"] == cause
            assert loop.time() - t0 == pytest.approx(after)
        assert "StasisStart" not in asterisk.history("c1")
        assert asterisk.destroyed == {"c1": cause}

    virtual(scenario)


def test_amd_reenters_stasis_with_the_verdict_and_the_originating_app_hears_the_dialplan() -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(
            default=Callee(amd="MACHINE", answer_after=0, hangup_on="amd", hangup_after=9.0)
        )
        async with connected(asterisk) as (ari, dispatcher):
            events = dispatcher.subscribe("c1")
            await ari.originate(ENDPOINT, channel_id="c1")
            await next_of(events, "StasisStart")
            await ari.continue_in_dialplan("c1", "warmline-amd")
            assert (await next_of(events, "StasisEnd"))["channel"]["id"] == "c1"
            start = await next_of(events, "StasisStart")
            assert start["args"] == ["amd", "MACHINE", "LONGGREETING-1500-1500"]
            await ari.continue_in_dialplan("c1", "elsewhere")
            # The originate subscribed the app for the channel's life: its hang-up outside Stasis
            # arrives with no subscription of its own.
            assert (await next_of(events, "ChannelDestroyed"))["cause"] == 16
        channel_calls = [r.op for r in asterisk.requests]
        assert channel_calls == ["originate", "continue_in_dialplan", "continue_in_dialplan"]

    virtual(scenario)


def test_a_channel_the_app_did_not_originate_is_heard_outside_stasis_once_subscribed() -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(default=Callee(amd="HUMAN", hangup_on="amd", hangup_after=9.0))
        async with connected(asterisk) as (ari, dispatcher):
            for channel_id, subscribed in (("c1", False), ("c2", True)):
                events = dispatcher.subscribe(channel_id)
                asterisk.place(channel_id, ENDPOINT, stage="amd")  # found running AMD (after a restart)
                if subscribed:
                    await ari.subscribe(f"channel:{channel_id}")
                start = await next_of(events, "StasisStart")  # AMD's verdict brings it into the app
                assert start["args"][:2] == ["amd", "HUMAN"]
                await ari.continue_in_dialplan(channel_id, "elsewhere")
                gone = await events.wait_for(lambda e: e.get("type") == "ChannelDestroyed", timeout=20)
                assert channel_id not in asterisk.channels
                assert (gone is not None) is subscribed, "heard outside Stasis only when subscribed"

    virtual(scenario)


def test_playbacks_last_as_long_as_their_audio_or_until_stopped(tmp_path: Path) -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(default=Callee(answer_after=0))
        prompts = SilentPrompts(tmp_path, seconds=2.5)
        wav = await prompts.speak("hello")
        async with connected(asterisk) as (ari, dispatcher):
            events = dispatcher.subscribe("c1")
            await ari.originate(ENDPOINT, channel_id="c1")
            await next_of(events, "StasisStart")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await ari.play("c1", f"sound:{wav.with_suffix('')}", playback_id="p1")
            assert (await next_of(events, "PlaybackStarted"))["playback"]["id"] == "p1"
            finished = await next_of(events, "PlaybackFinished")
            assert finished["playback"]["state"] == "done" and loop.time() - t0 == pytest.approx(2.5)
            asterisk.auto_finish_playbacks = False
            await ari.play("c1", "sound:beep", playback_id="p2")
            await next_of(events, "PlaybackStarted")
            await asyncio.sleep(100)
            assert (await ari.request("GET", "/playbacks/p2"))["state"] == "playing"
            await ari.stop_playback("p2")
            assert (await next_of(events, "PlaybackFinished"))["playback"]["id"] == "p2"
            await ari.continue_in_dialplan("c1", "elsewhere")
            with pytest.raises(AriError) as outside:
                await ari.play("c1", "sound:beep")
            assert outside.value.status == 409, "only a channel in Stasis plays"

    virtual(scenario)


def test_callee_presses_after_the_chosen_prompt_and_hangs_up_during_another() -> None:
    async def scenario() -> None:
        callee = Callee(
            answer_after=0,
            press="19",
            press_on_prompt=1,
            hangup_on="prompt",
            hangup_prompt=2,
            hangup_after=0.5,
            hangup_cause=31,
        )
        asterisk = FakeAsterisk(default=callee, play_seconds=2.0)
        async with connected(asterisk) as (ari, dispatcher):
            events = dispatcher.subscribe("c1")
            await ari.originate(ENDPOINT, channel_id="c1")
            await next_of(events, "StasisStart")
            await ari.play("c1", "sound:one", playback_id="p1")
            assert (await next_of(events, "ChannelDtmfReceived"))["digit"] == "1"
            assert (await next_of(events, "ChannelDtmfReceived"))["digit"] == "9"
            await ari.play("c1", "sound:two", playback_id="p2")
            await next_of(events, "PlaybackStarted")
            finished = await next_of(events, "PlaybackFinished")
            assert finished["playback"]["id"] == "p2"  # cut short by the hang-up
            assert (await next_of(events, "ChannelDestroyed"))["cause"] == 31

    virtual(scenario)


def test_injected_failures_delays_and_lost_answers() -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(default=Callee(answer_after=None, no_answer_cause=None))
        async with connected(asterisk) as (ari, _dispatcher):
            asterisk.unreachable("originate")
            with pytest.raises(AriError) as refused:
                await ari.originate(ENDPOINT, channel_id="c1")
            assert refused.value.status == 0 and refused.value.message.startswith("ConnectError")
            assert asterisk.channels == {}, "not reached: nothing placed"

            asterisk.read_timeout("originate")
            with pytest.raises(AriError) as lost:
                await ari.originate(ENDPOINT, channel_id="c2")
            assert lost.value.message.startswith("ReadTimeout") and "c2" in asterisk.channels

            asterisk.fail("hangup", 500, "boom")
            with pytest.raises(AriError):
                await ari.hangup("c2")
            await ari.hangup("c2")  # once only
            assert [r.error is not None for r in asterisk.calls("hangup")] == [True, False]

            loop = asyncio.get_running_loop()
            asterisk.delay("channels", 4.0, times=1)
            t0 = loop.time()
            assert await ari.channels() == []
            assert loop.time() - t0 == pytest.approx(4.0)

            gate = asterisk.hold("ping")
            ping = asyncio.create_task(ari.ping())
            await asyncio.sleep(50)
            assert not ping.done()
            gate.set()
            assert await ping

    virtual(scenario)


def test_restart_drops_every_channel_and_the_stream_says_reconnected() -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(default=Callee(answer_after=0))
        ari = asterisk.client()
        stream = ari.events()
        assert (await anext(stream))["type"] == CONNECTED
        await ari.originate(ENDPOINT, channel_id="c1")
        await settle()
        asterisk.stop()
        with pytest.raises(AriError) as down:
            await ari.channels()
        assert down.value.status == 0
        asterisk.start()
        seen = []
        while (event := await anext(stream))["type"] != RECONNECTED:
            seen.append(event["type"])
        assert "StasisStart" in seen, "what was sent before the socket dropped still arrives"
        assert await ari.channels() == [] and asterisk.restarts == 1
        await stream.aclose()

    virtual(scenario)


def test_a_killed_client_reaches_nothing_and_the_calls_it_left_stay_up() -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(default=Callee(answer_after=0))
        async with connected(asterisk) as (old, dispatcher):
            events = dispatcher.subscribe("c1")
            await old.originate(ENDPOINT, channel_id="c1")
            await next_of(events, "StasisStart")
            old.kill()
            with pytest.raises(AriError):
                await old.hangup("c1")
        async with connected(asterisk) as (new, _):
            [channel] = await new.channels()
            assert channel["id"] == "c1" and channel["state"] == "Up"
            assert channel["dialplan"]["app_name"] == "Stasis"

    virtual(scenario)


def test_bridges_snoops_and_recordings_report_their_events() -> None:
    async def scenario() -> None:
        asterisk = FakeAsterisk(default=Callee(answer_after=0))
        async with connected(asterisk) as (ari, dispatcher):
            events = dispatcher.subscribe("c1")
            await ari.originate(ENDPOINT, channel_id="c1")
            await next_of(events, "StasisStart")
            bridge = await ari.create_bridge(bridge_id="b1")
            dispatcher.alias("c1", bridge["id"])
            await ari.add_channel("b1", "c1")
            assert (await next_of(events, "ChannelEnteredBridge"))["bridge"]["channels"] == ["c1"]
            await ari.record_bridge("b1", "rec1")
            assert (await next_of(events, "RecordingStarted"))["recording"]["target_uri"] == "bridge:b1"
            await ari.stop_recording("rec1")
            assert (await next_of(events, "RecordingFinished"))["recording"]["name"] == "rec1"
            snoop = await ari.snoop("c1", snoop_id="s1", app_args="snoop")
            assert snoop["id"] == "s1" and asterisk.channels["s1"].stasis_args == ["snoop"]
            await ari.destroy_bridge("b1")
            await next_of(events, "BridgeDestroyed")
            assert asterisk.channels["c1"].bridge is None
            await ari.set_variable("c1", "X", "1")
            assert await ari.get_variable("c1", "X") == "1"
            await ari.start_moh("c1")
            assert asterisk.channels["c1"].moh == "default"
            assert (await ari.info())["system"]["version"].endswith("fake")

    virtual(scenario)


def test_the_virtual_clock_jumps_over_sleeps_but_not_over_work_in_threads() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600)
        assert loop.time() - t0 == pytest.approx(3600)
        fired: list[float] = []
        loop.call_later(5, lambda: fired.append(loop.time()))
        never = threading.Event()

        def work() -> float:
            never.wait(0.05)  # work that takes real time; the loop is idle meanwhile, yet must not jump
            return loop.time()

        seen = await asyncio.to_thread(work)
        assert seen == pytest.approx(t0 + 3600) and fired == []
        await asyncio.sleep(10)
        assert fired == [pytest.approx(t0 + 3605)]

    virtual(scenario)

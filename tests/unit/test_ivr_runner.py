"""The flow runner against a fake ARI and a scripted callee; events flow through the dispatcher."""

from __future__ import annotations

import asyncio
import shutil
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.ari import RECONNECTED, AriError
from core.ari_events import ChannelEvents, EventDispatcher, event_ids
from ivr.check import check_text, load_flow
from ivr.flow import Flow, GatherNode, is_personal
from ivr.runner import FlowResult, FlowRunner, prepare_prompts, run_flow
from ivr.tts import PromptCache

pytestmark = pytest.mark.skipif(not shutil.which("sox"), reason="sox converts prompts")

CONFIG = Path(__file__).resolve().parents[2] / "config" / "ivr"
CHANNEL = "attempt-1"
CONTACT = {"name": "张三", "clinic": "朝阳社区卫生服务中心", "date": "三月五日"}


class ToneEngine:
    name = "tone"
    version = "1"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def synthesize(self, text: str, voice: str, *, out_dir: Path) -> Path:
        self.texts.append(text)
        out = out_dir / "t.wav"
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\x00\x01" * 800)
        return out


class FakeAri:
    """Just enough of Asterisk: playbacks finish after `play_time`, hang-ups end the channel."""

    def __init__(self, dispatcher: EventDispatcher, play_time: float = 0.03) -> None:
        self.dispatcher = dispatcher
        self.play_time = play_time
        self.plays: list[tuple[str, list[str]]] = []
        self.stopped: list[str] = []
        self.hangups: list[str] = []
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.gone = False
        self.on_play: Callable[[int, list[str]], None] = lambda index, media: None
        self.play_error: AriError | None = None
        self._finished: set[str] = set()

    def emit(self, event: dict[str, Any], delay: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self.dispatcher.dispatch, event)

    # ---- the callee
    def press(self, digit: str, delay: float = 0.0) -> None:
        self.emit({"type": "ChannelDtmfReceived", "digit": digit, "channel": {"id": CHANNEL}}, delay)

    def callee_hangs_up(self, delay: float = 0.0, cause: int = 16) -> None:
        def go() -> None:
            self.gone = True
            self.dispatcher.dispatch(
                {"type": "ChannelHangupRequest", "cause": cause, "channel": {"id": CHANNEL}}
            )
            self.dispatcher.dispatch({"type": "StasisEnd", "channel": {"id": CHANNEL}})
            self.dispatcher.dispatch({"type": "ChannelDestroyed", "cause": cause, "channel": {"id": CHANNEL}})

        asyncio.get_running_loop().call_later(delay, go)

    # ---- ARI
    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        playback_id: str | None = None,
        *,
        lang: str | None = None,
    ) -> dict[str, Any]:
        if self.play_error is not None:
            raise self.play_error
        if self.gone:
            raise AriError(404, "POST", f"/channels/{channel_id}/play", "Channel not found")
        assert playback_id is not None
        items = [media] if isinstance(media, str) else list(media)
        self.plays.append((playback_id, items))
        pb = {"id": playback_id, "target_uri": f"channel:{channel_id}", "media_uri": items[0]}
        self.emit({"type": "PlaybackStarted", "playback": {**pb, "state": "playing"}})

        def finish() -> None:
            if playback_id not in self.stopped and not self.gone:
                self._finished.add(playback_id)
                self.dispatcher.dispatch({"type": "PlaybackFinished", "playback": {**pb, "state": "done"}})

        asyncio.get_running_loop().call_later(self.play_time * len(items), finish)
        self.on_play(len(self.plays), items)
        return pb

    async def stop_playback(self, playback_id: str) -> None:
        self.stopped.append(playback_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        if self.gone:
            raise AriError(404, "DELETE", f"/channels/{channel_id}", "Channel not found")
        self.hangups.append(channel_id)
        self.gone = True
        self.dispatcher.dispatch({"type": "StasisEnd", "channel": {"id": channel_id}})

    async def answer(self, channel_id: str) -> None:
        self.requests.append(("POST", "answer", {}))

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        if self.gone:
            raise AriError(404, "GET", f"/channels/{channel_id}", "Channel not found")
        return {"id": channel_id, "state": "Up"}

    async def record_channel(self, channel_id: str, name: str, **params: Any) -> dict[str, Any]:
        self.requests.append(("POST", f"/channels/{channel_id}/record", {"name": name, **params}))
        rec = {"name": name, "target_uri": f"channel:{CHANNEL}", "format": "wav"}
        self.emit({"type": "RecordingStarted", "recording": {**rec, "state": "recording"}})
        self.emit({"type": "RecordingFinished", "recording": {**rec, "state": "done"}}, 0.05)
        return rec

    async def stop_recording(self, name: str) -> None:
        self.requests.append(("POST", f"/recordings/live/{name}/stop", {}))

    async def get_playback(self, playback_id: str) -> dict[str, Any]:
        self.requests.append(("GET", f"/playbacks/{playback_id}", {}))
        if playback_id in self._finished:
            raise AriError(404, "GET", f"/playbacks/{playback_id}", "Playback not found")
        return {}


@pytest.fixture
def dispatcher() -> EventDispatcher:
    return EventDispatcher()


@pytest.fixture
def ari(dispatcher: EventDispatcher) -> FakeAri:
    return FakeAri(dispatcher)


@pytest.fixture
def prompts(tmp_path: Path) -> PromptCache:
    return PromptCache(tmp_path / "prompts", ToneEngine())


def drain_types(events: ChannelEvents) -> list[str]:
    out = []
    while (event := events.get_nowait()) is not None:
        out.append(str(event["type"]))
    return out


def quick(flow: Flow, timeout: float = 0.1) -> Flow:
    for node in flow.nodes.values():
        if isinstance(node, GatherNode):
            node.timeout = timeout
            node.inter_digit_timeout = timeout
    return flow


def vaccination() -> Flow:
    return quick(load_flow(CONFIG / "vaccination_reminder.yaml"))


async def run(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache, flow: Flow, **kw: Any
) -> FlowResult:
    events = dispatcher.subscribe(CHANNEL)
    async with asyncio.timeout(10):
        return await run_flow(ari, CHANNEL, flow, kw.pop("fields", CONTACT), events, prompts=prompts, **kw)


def press_after_prompt(ari: FakeAri, prompt_index: int, *digits: str) -> None:
    """The callee presses after the given play (1-based) has finished."""

    def on_play(index: int, media: list[str]) -> None:
        if index == prompt_index:
            for i, d in enumerate(digits):
                ari.press(d, ari.play_time * len(media) + 0.01 + i * 0.005)

    ari.on_play = on_play


# ------------------------------------------------------------------ vaccination reminder


async def test_press_1_confirms_and_flow_hangs_up(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    press_after_prompt(ari, 2, "1")  # play 1 = intro, play 2 = the question
    result = await run(ari, dispatcher, prompts, vaccination())
    assert result.outcome == "confirmed" and not result.escalate
    assert result.path == ["intro", "heard", "ask", "confirmed", "bye_confirmed"]
    assert result.digits == {"ask": "1"} and result.keys == "1"
    assert result.ended == "hangup" and result.hangup_by == "flow" and ari.hangups == [CHANNEL]
    assert result.first_audio_after is not None and result.first_audio_after < 1.0
    assert result.transfer is None and result.error is None and result.warnings == []
    # the contact's fields were spoken: one TTS text per rendered prompt
    engine = prompts.engine
    assert isinstance(engine, ToneEngine) and any("张三您好" in t for t in engine.texts)
    assert all(m.startswith(f"sound:{prompts.root}") for _pid, media in ari.plays for m in media)


async def test_barge_in_stops_the_prompt(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    ari.play_time = 0.5

    def on_play(index: int, media: list[str]) -> None:
        if index == 2:
            ari.press("2", 0.05)  # during the question

    ari.on_play = on_play
    result = await run(ari, dispatcher, prompts, vaccination())
    assert result.outcome == "reschedule"
    assert ari.stopped == [ari.plays[1][0]]  # the question's playback was stopped
    assert result.path[-2:] == ["reschedule", "bye_reschedule"]


async def test_invalid_key_during_prompt_is_ignored_after_it_counts(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    ari.play_time = 0.2

    def on_play(index: int, media: list[str]) -> None:
        if index == 2:
            ari.press("5", 0.05)  # during the prompt: not a valid key, no barge-in
            ari.press("5", 0.25)  # after it: invalid
        if index == 3:
            ari.press("9", 0.05)  # the re-prompt, barged

    ari.on_play = on_play
    result = await run(ari, dispatcher, prompts, vaccination())
    assert result.outcome == "opted_out"
    assert [(i.status, i.entry) for i in result.inputs] == [("invalid", "5"), ("ok", "9")]
    assert ari.stopped == [ari.plays[2][0]]
    assert len(ari.plays[2][1]) == 2  # "按键无效" + the question again
    assert result.keys == "559"


async def test_no_input_after_retries(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    result = await run(ari, dispatcher, prompts, vaccination())
    assert result.outcome == "no_input"
    assert [i.status for i in result.inputs] == ["no_input"] * 3  # first try + 2 retries
    assert result.path[-2:] == ["no_answer", "bye"] and result.hangup_by == "flow"
    assert [len(media) for _pid, media in ari.plays] == [1, 1, 2, 2, 1]  # retries lead with "没有收到"


async def test_agent_transfer_leaves_the_call_up(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    press_after_prompt(ari, 2, "0")
    result = await run(ari, dispatcher, prompts, vaccination())
    assert result.outcome == "agent" and result.ended == "transfer"
    assert result.transfer is not None and result.transfer.skill == "vaccination"
    assert result.transfer.node == "to_agent" and result.hangup_by is None
    assert ari.hangups == [] and not ari.gone


async def test_callee_hangs_up_during_intro(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    ari.play_time = 1.0
    flow = vaccination()
    await prepare_prompts(flow, CONTACT, prompts)  # so the hang-up lands in the playback
    ari.callee_hangs_up(0.05, cause=16)
    result = await run(ari, dispatcher, prompts, flow)
    assert result.outcome is None and result.path == ["intro"]
    assert result.ended == "callee_hangup" and result.hangup_by == "callee" and result.hangup_cause == 16
    assert ari.hangups == [] and ari.stopped == []
    # what the runner did not read stays for the dialer
    events = dispatcher.subscribe(CHANNEL)
    assert drain_types(events) == ["StasisEnd", "ChannelDestroyed"]


async def test_callee_hangs_up_while_we_wait_for_a_key(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    def on_play(index: int, media: list[str]) -> None:
        if index == 2:
            ari.callee_hangs_up(ari.play_time + 0.02)

    ari.on_play = on_play
    result = await run(ari, dispatcher, prompts, quick(load_flow(CONFIG / "vaccination_reminder.yaml"), 5.0))
    assert result.outcome == "no_input" and result.hangup_by == "callee"  # the provisional outcome
    assert result.path == ["intro", "heard", "ask"]


async def test_channel_gone_before_first_play(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    ari.gone = True
    result = await run(ari, dispatcher, prompts, vaccination())
    assert result.ended == "callee_hangup" and result.hangup_by == "callee" and result.outcome is None


async def test_reconnect_finds_the_channel_gone(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    ari.play_time = 5.0

    def on_play(index: int, media: list[str]) -> None:
        ari.gone = True  # hung up while the socket was down: no events arrive
        ari.emit({"type": RECONNECTED}, 0.05)

    ari.on_play = on_play
    result = await run(ari, dispatcher, prompts, vaccination())
    assert result.ended == "callee_hangup" and result.seconds < 2


async def test_ari_error_ends_the_call(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    ari.play_error = AriError(500, "POST", "/channels/x/play", "boom")
    result = await run(ari, dispatcher, prompts, vaccination())
    assert result.ended == "error" and "boom" in (result.error or "")
    assert ari.hangups == [CHANNEL] and result.hangup_by == "flow"  # never left up


async def test_cancel_stops_playback_and_hangs_up(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    ari.play_time = 5.0
    events = dispatcher.subscribe(CHANNEL)
    task = asyncio.create_task(run_flow(ari, CHANNEL, vaccination(), CONTACT, events, prompts=prompts))
    playing = asyncio.Event()
    ari.on_play = lambda index, media: playing.set()
    await playing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ari.stopped == [ari.plays[0][0]] and ari.hangups == [CHANNEL]


async def test_missing_field_is_a_warning(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    press_after_prompt(ari, 2, "1")
    result = await run(ari, dispatcher, prompts, vaccination(), fields={"name": "张三"})
    assert result.outcome == "confirmed"
    assert "field {clinic} has no value for this contact" in result.warnings


# ------------------------------------------------------------------ the other examples


async def test_elder_welfare_help_escalates_and_transfers(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    press_after_prompt(ari, 2, "0")
    result = await run(ari, dispatcher, prompts, quick(load_flow(CONFIG / "elder_welfare_check.yaml")))
    assert (result.outcome, result.escalate) == ("help", True)
    assert (
        result.transfer is not None and result.transfer.skill == "welfare" and result.transfer.priority == 10
    )


async def test_elder_welfare_fine_clears_the_escalation(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    press_after_prompt(ari, 2, "1")
    result = await run(ari, dispatcher, prompts, quick(load_flow(CONFIG / "elder_welfare_check.yaml")))
    assert (result.outcome, result.escalate) == ("confirmed", False)


async def test_elder_welfare_silence_escalates(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    result = await run(ari, dispatcher, prompts, quick(load_flow(CONFIG / "elder_welfare_check.yaml")))
    assert (result.outcome, result.escalate) == ("no_input", True) and result.path[-1] == "bye"


async def test_government_notice_twice_and_repeat_bounded(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    ari.play_time = 0.01

    def on_play(index: int, media: list[str]) -> None:
        if len(media) == 1 and index > 2:  # the "重听请按一" question
            ari.press("1", 0.03)

    ari.on_play = on_play
    result = await run(ari, dispatcher, prompts, quick(load_flow(CONFIG / "government_notice.yaml")))
    notice_media = ari.plays[1][1]
    assert len(notice_media) == 3 and notice_media[0] == notice_media[2]  # notice, gap, notice
    assert notice_media[1].endswith("/silence/1000")
    assert result.path.count("notice") == 4  # first time + 3 repeats, then over_limit
    assert result.path[-1] == "bye" and result.outcome == "completed"
    assert ari.plays[0][1][0].startswith(f"sound:{prompts.root}/files/")  # the chime, converted


# ------------------------------------------------------------------ gather, branch, record

RECORD_FLOW = """\
name: survey
start: code
nodes:
  code:
    type: gather
    prompt: "请输入代码，以井号结束"
    max_digits: 3
    terminator: "#"
    valid: ["12", "123", "3"]
    on: {"3": bye}
    next: which
    no_input: bye
  which: {type: branch, field: input.code, cases: {"12": message}, default: bye}
  message: {type: record, prompt: "请留言", max_seconds: 5, next: thanks}
  thanks: {type: set_outcome, outcome: callback, next: bye}
  bye: {type: hangup}
"""


async def test_multi_digit_entry_branch_and_record(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache, tmp_path: Path
) -> None:
    flow, problems = check_text(RECORD_FLOW)
    assert flow is not None and problems == []
    press_after_prompt(ari, 1, "1", "2", "#")
    result = await run(ari, dispatcher, prompts, quick(flow, 0.3), recordings_dir=tmp_path)
    assert result.digits == {"code": "12"} and result.path == ["code", "which", "message", "thanks", "bye"]
    assert result.outcome == "callback" and result.recording and result.recording.startswith("ivr-")
    assert result.recording_path == tmp_path / f"{result.recording}.wav"
    method, path, params = next(r for r in ari.requests if r[1].endswith("/record"))
    assert (method, path) == ("POST", f"/channels/{CHANNEL}/record")
    assert params["max_duration"] == 5 and params["beep"] is True and params["terminate_on"] == "#"


async def test_longer_entry_waits_for_more_digits(
    ari: FakeAri, dispatcher: EventDispatcher, prompts: PromptCache
) -> None:
    flow, _ = check_text(RECORD_FLOW)
    assert flow is not None
    press_after_prompt(ari, 1, "1", "2", "3")
    result = await run(ari, dispatcher, prompts, quick(flow, 0.3))
    assert result.digits == {"code": "123"} and result.path == ["code", "which", "bye"]


# ------------------------------------------------------------------ prepare, runner, dispatcher


async def test_a_runner_prepares_a_flows_public_prompts_once_then_only_the_personal(
    prompts: PromptCache, ari: FakeAri
) -> None:
    runner = FlowRunner(ari, prompts)
    flow = vaccination()
    personal = sum(1 for _, _, p in flow.all_prompts() if p.say is not None and is_personal(p.say))
    assert 0 < personal < 9
    assert await runner.prepare(flow, CONTACT) == 9
    made, hits = prompts.stats["made"], prompts.stats["hits"]
    other = {**CONTACT, "name": "李四"}
    named = sum(1 for _, _, p in flow.all_prompts() if p.say is not None and "{name}" in p.say)
    assert await runner.prepare(flow, other) == 9, "the count is the flow's, as before"
    assert prompts.stats["made"] == made + named, "the prompts saying the new name are made"
    assert prompts.stats["hits"] == hits + personal - named, "the public ones are not looked up"


async def test_prepare_renders_every_prompt_once(
    prompts: PromptCache, ari: FakeAri, dispatcher: EventDispatcher
) -> None:
    runner = FlowRunner(ari, prompts)
    flow = vaccination()
    assert await runner.prepare(flow, CONTACT) == 9  # intro, 3 of the question, 5 closing words
    made = prompts.stats["made"]
    assert await prepare_prompts(flow, CONTACT, prompts) == 9 and prompts.stats["made"] == made
    press_after_prompt(ari, 2, "1")
    async with asyncio.timeout(10):
        result = await runner.run(CHANNEL, flow, CONTACT, dispatcher.subscribe(CHANNEL), answer=True)
    assert result.outcome == "confirmed" and ("POST", "answer", {}) in ari.requests
    assert prompts.stats["made"] == made  # nothing rendered during the call


async def test_a_prepared_flow_makes_only_its_personal_prompts_ahead_of_a_call(
    prompts: PromptCache, ari: FakeAri, dispatcher: EventDispatcher
) -> None:
    """Once the runner prepared the flow, a call looks up ahead only the prompts with the contact's
    own words, then each prompt it plays; not every prompt of the flow (issue 13, Round 7)."""
    flow = vaccination()
    spoken = [p.say for _, _, p in flow.all_prompts() if p.say is not None]
    personal = sum(1 for say in spoken if is_personal(say))

    asked: list[str] = []
    speak = prompts.speak

    async def counted(text: str, voice: str | None = None, *, personal: bool = False) -> Path:
        asked.append(text)
        return await speak(text, voice, personal=personal)

    prompts.speak = counted  # type: ignore[method-assign]

    async def looked_up(runner: FlowRunner, calls: FakeAri) -> tuple[int, int]:
        asked.clear()
        press_after_prompt(calls, 2, "1")
        async with asyncio.timeout(10):
            result = await runner.run(
                CHANNEL, flow, CONTACT, calls.dispatcher.subscribe(CHANNEL), answer=True
            )
        assert result.outcome == "confirmed"
        return len(asked), len(calls.plays)

    # Not prepared (run_flow's callers, and a call whose prepare is still on its way): all ahead.
    looked, played = await looked_up(FlowRunner(ari, prompts), ari)
    assert played == 3 and looked == len(spoken) + played  # the reminder, the question, the thanks
    second = FakeAri(EventDispatcher())  # the next call
    runner = FlowRunner(second, prompts)
    await runner.prepare(flow, CONTACT)
    looked, played = await looked_up(runner, second)
    assert played == 3 and looked == personal + played and personal < len(spoken)


def test_dispatcher_routes_by_channel_playback_and_alias() -> None:
    unrouted: list[dict[str, Any]] = []
    d = EventDispatcher(unrouted=unrouted.append)
    a = d.subscribe("a")
    b = d.subscribe("b")
    d.alias("b", "snoop-b")
    d.dispatch({"type": "ChannelDtmfReceived", "channel": {"id": "a"}, "digit": "1"})
    d.dispatch({"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": "channel:b"}})
    d.dispatch({"type": "StasisStart", "channel": {"id": "snoop-b"}})
    d.dispatch({"type": "Dial", "peer": {"id": "a"}, "dialstatus": "ANSWER"})
    d.dispatch({"type": "StasisStart", "channel": {"id": "inbound-1"}})
    assert d.dispatch({"type": RECONNECTED}) == 2
    assert drain_types(a) == ["ChannelDtmfReceived", "Dial", RECONNECTED]
    assert drain_types(b) == ["PlaybackFinished", "StasisStart", RECONNECTED]
    assert [e["type"] for e in unrouted] == ["StasisStart", RECONNECTED]
    d.unsubscribe("b")
    assert (
        d.dispatch({"type": "StasisEnd", "channel": {"id": "snoop-b"}}) == 0 and "b" not in d and len(d) == 1
    )
    assert event_ids({"type": "ChannelEnteredBridge", "channel": {"id": "x"}, "bridge": {"id": "br"}}) == {
        "x",
        "br",
    }


async def test_dispatcher_run_pumps_a_source() -> None:
    async def source() -> Any:
        yield {"type": "WarmlineConnected"}
        yield {"type": "StasisStart", "channel": {"id": "c"}}

    d = EventDispatcher()
    events = d.subscribe("c")
    await d.run(source())
    assert d.connected.is_set() and events.qsize() == 2
    got = await events.wait_for(lambda e: e["type"] == "StasisStart", timeout=1)
    assert got is not None and await events.wait_for(lambda e: True, timeout=0.01) is None

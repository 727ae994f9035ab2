"""IVR flows against the real lab Asterisk: each simulated callee ends with its expected outcome.

A private lab (own var dir; its own slot in tests/lab.py, so nobody else's lab is
touched) serves the module. Every call is placed at once, each fed by one EventDispatcher that
owns the app's single event stream, as the dialer will do; then one test per behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.ari import AriClient, AriError
from core.ari_events import EventDispatcher
from core.settings import Settings
from ivr.check import load_flow
from ivr.flow import Flow
from ivr.runner import FlowResult, FlowRunner
from ivr.tts import PromptCache
from tests.lab import lab_client, lab_ports, private_lab

pytestmark = pytest.mark.integration

PORTS = lab_ports("ivr")
ARI_PORT = PORTS.ari
SIP_PORT = PORTS.sip
NUMBER = "1380013800{}"
CONFIG = Path(__file__).resolve().parents[2] / "config" / "ivr"
CONTACT = {"name": "张三", "clinic": "朝阳社区卫生服务中心", "date": "三月五日"}
# From the start of the flow to Asterisk starting the first prompt: 0.02-0.15 s measured, idle or
# beside a CPU-heavy job (the prompts are rendered while the phone rings; this is ARI and Asterisk).
FIRST_AUDIO_WITHIN = 1.0

VOICEMAIL = """\
name: leave_a_message
start: ask
nodes:
  ask: {type: play, say: "请在提示音后留言。", next: message}
  message: {type: record, max_seconds: 4, silence_end: 3, beep: true, next: done}
  done: {type: set_outcome, outcome: callback, next: bye}
  bye: {type: hangup, prompt: "谢谢，再见。"}
"""


@pytest.fixture(scope="module")
def lab_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("ivr-lab") / "var", PORTS) as settings:
        yield settings


client = lab_client


@dataclass
class Call:
    name: str
    flow: Flow
    digit: str
    channel_id: str = ""
    answered: bool = False
    result: FlowResult | None = None
    up_after_flow: bool | None = None  # the channel still existed when run_flow returned
    prepare_seconds: float = 0.0


async def _call(ari: AriClient, dispatcher: EventDispatcher, runner: FlowRunner, call: Call) -> None:
    call.channel_id = f"ivr-{call.name}-{uuid.uuid4().hex[:8]}"
    with dispatcher.subscription(call.channel_id) as events:
        # As the dialer does: render the contact's prompts while the callee's phone rings.
        started = time.perf_counter()
        prepared = asyncio.create_task(runner.prepare(call.flow, CONTACT))
        await ari.originate(
            f"Local/{NUMBER.format(call.digit)}@lab-pstn", channel_id=call.channel_id, timeout=20
        )
        await prepared
        call.prepare_seconds = time.perf_counter() - started
        start = await events.wait_for(lambda e: e["type"] in ("StasisStart", "ChannelDestroyed"), timeout=30)
        assert start is not None
        if start["type"] != "StasisStart":
            return
        call.answered = True
        result = await runner.run(call.channel_id, call.flow, CONTACT, events)
        call.result = result
        try:
            await ari.get_channel(call.channel_id)
            call.up_after_flow = True
        except AriError:
            call.up_after_flow = False
        if result.transfer is not None:  # no agents in this test: the "ACD" ends the call
            with contextlib.suppress(AriError):
                await ari.hangup(call.channel_id)


async def _run_all(settings: Settings) -> dict[str, Call]:
    vaccination = load_flow(CONFIG / "vaccination_reminder.yaml", fields=list(CONTACT))
    welfare = load_flow(CONFIG / "elder_welfare_check.yaml", fields=list(CONTACT))
    notice = load_flow(CONFIG / "government_notice.yaml", fields=list(CONTACT))
    vm_file = settings.var_dir / "leave_a_message.yaml"
    vm_file.parent.mkdir(parents=True, exist_ok=True)
    vm_file.write_text(VOICEMAIL)
    voicemail = load_flow(vm_file)
    calls = {
        **{f"vaccination-{d}": Call(f"vaccination-{d}", vaccination, d) for d in "01678"},
        "welfare-1": Call("welfare-1", welfare, "1"),
        "welfare-0": Call("welfare-0", welfare, "0"),
        # Callee 1 gives up after 30 s of continuous audio (lab-await-prompt), shorter than the
        # notice played twice; callee 0 waits as long, presses 1 into the second playing (a play
        # node takes no keys), then says nothing more.
        "notice-0": Call("notice-0", notice, "0"),
        "voicemail-9": Call("voicemail-9", voicemail, "9"),
    }
    prompts = PromptCache.for_var_dir(settings.var_dir)
    async with client(settings) as ari:
        dispatcher = EventDispatcher()
        pump = asyncio.create_task(dispatcher.run(ari.events()))
        try:
            async with asyncio.timeout(30):
                await dispatcher.connected.wait()
            runner = FlowRunner(ari, prompts, recordings_dir=settings.recordings_dir)
            async with asyncio.timeout(300):  # the longest call (the notice, twice) takes about 60 s
                await asyncio.gather(*(_call(ari, dispatcher, runner, c) for c in calls.values()))
            # Nothing left behind: every channel of ours is gone within a moment.
            ours = {c.channel_id for c in calls.values()}
            deadline = time.monotonic() + 30
            while left := [ch["id"] for ch in await ari.channels() if ch["id"].split(";")[0] in ours]:
                assert time.monotonic() < deadline, left
                await asyncio.sleep(0.1)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
    return calls


@pytest.fixture(scope="module")
def calls(lab_settings: Settings) -> dict[str, Call]:
    return asyncio.run(_run_all(lab_settings))


def result_of(calls: dict[str, Call], name: str) -> FlowResult:
    call = calls[name]
    assert call.answered, name
    assert call.result is not None
    return call.result


# ------------------------------------------------------------------ vaccination reminder


def test_0_confirms(calls: dict[str, Call]) -> None:
    r = result_of(calls, "vaccination-0")
    assert r.outcome == "confirmed", r
    assert r.digits == {"ask": "1"} and r.keys == "1"
    assert r.ended == "hangup" and r.hangup_by == "flow" and r.error is None
    assert r.path == ["intro", "heard", "ask", "confirmed", "bye_confirmed"]


def test_1_listens_and_gives_no_input(calls: dict[str, Call]) -> None:
    r = result_of(calls, "vaccination-1")
    assert r.outcome == "no_input", r
    assert r.keys == "" and r.hangup_by == "callee" and r.ended == "callee_hangup"


def test_6_asks_for_an_agent(calls: dict[str, Call]) -> None:
    r = result_of(calls, "vaccination-6")
    assert r.outcome == "agent", r
    assert r.transfer is not None and r.transfer.skill == "vaccination"
    assert r.ended == "transfer" and r.hangup_by is None
    assert calls["vaccination-6"].up_after_flow is True  # handed over live


def test_7_opts_out(calls: dict[str, Call]) -> None:
    r = result_of(calls, "vaccination-7")
    assert r.outcome == "opted_out", r
    assert r.keys == "9" and r.hangup_by == "flow"


def test_8_hangs_up_early(calls: dict[str, Call]) -> None:
    call = calls["vaccination-8"]
    if not call.answered:  # gone before Stasis even saw it: also "hung up early"
        return
    r = result_of(calls, "vaccination-8")
    assert r.hangup_by == "callee" and r.ended == "callee_hangup", r
    assert r.outcome is None and r.path in ([], ["intro"])


def test_no_errors_and_first_audio_is_prompt(calls: dict[str, Call]) -> None:
    for call in calls.values():
        r = call.result
        if r is None:
            continue
        assert r.error is None, r
        assert not [w for w in r.warnings if "could not play" in w], r.warnings
        if r.first_audio_after is None:
            # First audio is when Asterisk starts the first prompt (PlaybackStarted). Callee 8
            # answers and hangs up at once: its hang-up may come before that prompt starts (the
            # flow entered its first node, but nothing was played), or after; both are right.
            # Every other callee stays on the line long enough to hear the first prompt.
            assert call.digit == "8", f"{call.name}: no first audio: {r}"
            assert r.hangup_by == "callee" and r.path in ([], [call.flow.start]), r
        else:
            assert r.first_audio_after < FIRST_AUDIO_WITHIN, (call.name, r.first_audio_after)


# ------------------------------------------------------------------ other flows


def test_elder_welfare_no_input_escalates(calls: dict[str, Call]) -> None:
    r = result_of(calls, "welfare-1")
    assert (r.outcome, r.escalate) == ("no_input", True), r


def test_elder_welfare_fine(calls: dict[str, Call]) -> None:
    r = result_of(calls, "welfare-0")
    assert (r.outcome, r.escalate) == ("confirmed", False), r


def test_government_notice_heard(calls: dict[str, Call]) -> None:
    r = result_of(calls, "notice-0")
    assert r.outcome == "completed", r
    assert r.path == ["chime", "notice", "heard", "ask", "bye"] and r.hangup_by == "flow"
    assert r.seconds > 25  # the notice really played twice


def test_record_a_message(calls: dict[str, Call], lab_settings: Settings) -> None:
    r = result_of(calls, "voicemail-9")
    assert r.outcome == "callback" and r.recording and r.recording_path, r
    assert r.recording_path.exists() and r.recording_path.stat().st_size > 8000  # ≥ 0.5 s of 8 kHz audio
    assert r.recording_path.parent.resolve() == lab_settings.recordings_dir.resolve()

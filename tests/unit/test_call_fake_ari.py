"""Every way an outbound call ends without an agent, in milliseconds: `dialer.engine.calls.Call`
against the fake Asterisk, with the real EventDispatcher and the real FlowRunner running the
shipped vaccination reminder flow (prompts are silent WAVs of 2 s; the loop clock is virtual).

What the lab tests show with real calls (tests/integration/test_dialer_campaign.py,
test_dialer_crash.py), shown here for each branch on its own: the facts the call reports, what it
asked of Asterisk, and so the outcome the ledger will give it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from core.ari_events import EventDispatcher
from dialer.engine.calls import Call, CallPlan, CallReport
from dialer.outcomes import Outcome, classify
from ivr.check import REPO_FLOWS, load_flow
from ivr.runner import FlowRunner
from tests.fakes.ari import (
    BUSY,
    CONGESTION,
    LISTENER,
    MACHINE,
    NO_ANSWER,
    Callee,
    FakeAri,
    FakeAsterisk,
    confirms,
)
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts

FLOW = load_flow(REPO_FLOWS / "vaccination_reminder.yaml")
FIELDS = {"name": "张三", "clinic": "朝阳社区卫生服务中心", "date": "三月五日"}
ENDPOINT = "Local/8613900000001@lab-pstn"
ATTEMPT = "attempt-1"
Stage = Literal["ringing", "amd", "stasis"]
RING_TIMEOUT = 30
INTRO = "{name}您好，这里是{clinic}。提醒您已预约{date}接种疫苗。"  # the flow's first prompt
ASK = "确认接种请按一，需要改约请按二，转人工服务请按零，不再接收此类电话请按九。"
BYE_CONFIRMED = "已为您确认"


def plan(policy: str = "leave_message") -> CallPlan:
    return CallPlan(
        campaign="vaccination",
        endpoint=ENDPOINT,
        app="warmline",
        amd_policy=policy,
        flow=FLOW,
        caller_id="+861012345678",
        ring_timeout=RING_TIMEOUT,
    )


@dataclass
class Dialled:
    """One finished call: its report, what it told the dialer, and what Asterisk saw."""

    report: CallReport
    asterisk: FakeAsterisk
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # loop time from the start to the report
    spoken: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        return Outcome.interrupted if self.report.interrupted else classify(self.report.facts)

    @property
    def ops(self) -> list[str]:
        return self.asterisk.ops()

    def at(self, kind: str, nth: int = 1) -> datetime:
        """When Asterisk sent the nth event of a type (loop time on a fixed day)."""
        times = [e["timestamp"] for e in self.asterisk.events if e["type"] == kind]
        return datetime.fromisoformat(times[nth - 1])


@asynccontextmanager
async def line(
    asterisk: FakeAsterisk, prompts: SilentPrompts
) -> AsyncIterator[tuple[FakeAri, EventDispatcher]]:
    """A dialer's view of one node: a client, its events pumped by the real dispatcher."""
    ari = asterisk.client()
    dispatcher = EventDispatcher()
    pump = asyncio.create_task(dispatcher.run(ari.events()))
    await dispatcher.connected.wait()
    try:
        yield ari, dispatcher
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


def dial(
    tmp_path: Path,
    callee: Callee,
    *,
    policy: str = "leave_message",
    setup: Callable[[FakeAsterisk, FakeAri], object] = lambda asterisk, ari: None,
    resume: Callable[[FakeAsterisk], dict[str, Any]] | None = None,
) -> Dialled:
    """Place (or, with `resume`, adopt) one call to a callee following `callee`, to its end."""

    async def main() -> Dialled:
        asterisk = FakeAsterisk(callees={ENDPOINT: callee})
        prompts = SilentPrompts(tmp_path / "prompts")
        async with line(asterisk, prompts) as (ari, dispatcher):
            setup(asterisk, ari)
            notes: list[str] = []

            async def notify(kind: str, detail: dict[str, Any]) -> None:
                notes.append(kind)

            call = Call(
                ari,
                dispatcher,
                FlowRunner(ari, prompts),
                plan(policy),
                ATTEMPT,
                FIELDS,
                notify,
                resume=resume(asterisk) if resume is not None else None,
                epoch=lambda: asterisk.restarts,  # the node's connection count, as the worker keeps it
            )
            loop = asyncio.get_running_loop()
            started = loop.time()
            report = await call.run()
            assert ATTEMPT not in dispatcher, "the call's subscription ends with it"
            return Dialled(report, asterisk, notes, loop.time() - started, prompts.spoken)

    return run_virtual(main())


# ------------------------------------------------------------------ not answered


@pytest.mark.parametrize(
    ("callee", "cause", "outcome", "rang"),
    [
        (BUSY, 17, Outcome.busy, 0.0),
        (CONGESTION, 34, Outcome.failed, 0.0),
        (NO_ANSWER, 19, Outcome.no_answer, RING_TIMEOUT),
    ],
    ids=["busy", "congestion", "no-answer"],
)
def test_an_unanswered_call_ends_with_asterisks_cause(
    tmp_path: Path, callee: Callee, cause: int, outcome: Outcome, rang: float
) -> None:
    call = dial(tmp_path, callee)
    assert call.report.hangup_cause == cause and not call.report.answered
    assert call.outcome is outcome
    assert call.notes == ["originated"]
    assert call.ops == ["originate"], "Asterisk ended it: nothing to hang up, no subscription of our own"
    assert call.seconds == pytest.approx(rang)
    originate = call.asterisk.calls("originate")[0].params
    assert originate["channelId"] == ATTEMPT and originate["appArgs"] == "dialer"
    assert originate["timeout"] == RING_TIMEOUT and originate["callerId"] == "+861012345678"


def test_a_ring_asterisk_never_ends_is_hung_up_by_the_dialer(tmp_path: Path) -> None:
    call = dial(tmp_path, Callee(answer_after=None, no_answer_cause=None))
    assert call.ops == ["originate", "get_channel", "hangup"]
    assert call.seconds == pytest.approx(RING_TIMEOUT + 30), "the dialer's own guard: ring timeout + 30 s"
    assert call.report.hangup_cause == 16 and call.outcome is Outcome.no_answer


# ------------------------------------------------------------------ a person


def test_a_person_confirms_with_a_key(tmp_path: Path) -> None:
    call = dial(tmp_path, confirms("1"))
    report = call.report
    assert call.notes == ["originated", "answered", "amd"]
    assert report.answered and report.amd_status == "HUMAN" and report.amd_cause == "HUMAN-500-500"
    assert report.flow_outcome == "confirmed" and report.digits == "1"
    assert call.outcome is Outcome.confirmed
    assert report.hangup_cause == 16 and report.detail["flow"]["ended"] == "hangup"
    assert report.detail["flow"]["path"] == ["intro", "heard", "ask", "confirmed", "bye_confirmed"]
    # Into AMD (the originate's subscription hears it outside Stasis), three prompts, hung up by the flow.
    assert call.ops == ["originate", "continue_in_dialplan", "play", "play", "play", "hangup"]
    assert call.asterisk.calls("continue_in_dialplan")[0].params["context"] == "warmline-amd"
    assert call.spoken[:2] == [INTRO.format(**FIELDS), ASK]
    assert call.spoken[-1].startswith(BYE_CONFIRMED)
    assert call.asterisk.destroyed == {ATTEMPT: 16}


def test_a_person_who_answers_before_the_question_ends_stops_it(tmp_path: Path) -> None:
    call = dial(tmp_path, confirms("1", press_when="started", press_after=0.5))
    assert call.outcome is Outcome.confirmed
    assert call.ops.count("stop_playback") == 1, "the key barged into the question"


@pytest.mark.parametrize(
    ("callee", "outcome", "digits", "plays"),
    [
        (confirms("2"), Outcome.reschedule, "2", 3),
        (confirms("9"), Outcome.opted_out, "9", 3),
        (Callee(), Outcome.no_input, "", 5),  # intro, the question three times, goodbye
        (confirms("5"), Outcome.no_input, "5", 5),  # an invalid key, then silence
    ],
    ids=["reschedule", "opt-out", "no-input", "invalid-key"],
)
def test_the_key_pressed_decides_the_outcome(
    tmp_path: Path, callee: Callee, outcome: Outcome, digits: str, plays: int
) -> None:
    call = dial(tmp_path, callee)
    assert call.outcome is outcome and call.report.digits == digits
    assert call.ops.count("play") == plays and call.ops[-1] == "hangup"


# ------------------------------------------------------------------ a machine


def test_a_machine_gets_the_message_once_its_greeting_is_over(tmp_path: Path) -> None:
    call = dial(tmp_path, MACHINE)
    report = call.report
    assert report.amd_status == "MACHINE" and report.message_left
    assert call.outcome is Outcome.machine_message_left
    assert call.ops == ["originate", "continue_in_dialplan", "set_variable", "play", "hangup"]
    assert call.asterisk.calls("set_variable")[0].params["variable"] == "TALK_DETECT(set)"
    quiet = (call.at("PlaybackStarted") - call.at("ChannelTalkingFinished")).total_seconds()
    assert quiet >= 1.5, "the message starts after 1.5 s of quiet (the beep is over)"
    assert call.spoken[-1] == INTRO.format(**FIELDS), "the flow's first message, said to the machine"


def test_a_machine_under_the_retry_policy_is_hung_up_without_a_message(tmp_path: Path) -> None:
    call = dial(tmp_path, MACHINE, policy="retry")
    assert call.outcome is Outcome.machine and not call.report.message_left
    assert call.ops == ["originate", "continue_in_dialplan", "hangup"]


def test_a_machine_that_hangs_up_during_its_greeting_gets_no_message(tmp_path: Path) -> None:
    call = dial(tmp_path, Callee(amd="MACHINE", hangup_on="amd", hangup_after=4.0))
    assert call.outcome is Outcome.machine and not call.report.message_left
    assert "play" not in call.ops


# ------------------------------------------------------------------ the callee hangs up


@pytest.mark.parametrize(
    ("callee", "outcome", "answered", "flow_outcome"),
    [
        (
            Callee(answer_after=5, hangup_on="ringing", hangup_after=2, hangup_cause=21),
            Outcome.failed,
            False,
            None,
        ),
        (Callee(hangup_on="answer"), Outcome.hangup_early, True, None),
        (Callee(hangup_on="amd", hangup_after=1.0), Outcome.hangup_early, True, None),
        (Callee(hangup_on="prompt", hangup_prompt=1, hangup_after=0.5), Outcome.hangup_early, True, None),
        (Callee(hangup_on="prompt", hangup_prompt=2, hangup_after=0.5), Outcome.no_input, True, "no_input"),
        (confirms("1", hangup_on="pressed"), Outcome.confirmed, True, "confirmed"),
    ],
    ids=[
        "while-ringing",
        "on-answer",
        "during-amd",
        "during-intro",
        "during-question",
        "right-after-the-key",
    ],
)
def test_the_callee_hangs_up(
    tmp_path: Path, callee: Callee, outcome: Outcome, answered: bool, flow_outcome: str | None
) -> None:
    call = dial(tmp_path, callee)
    report = call.report
    assert call.outcome is outcome
    assert report.answered is answered and report.flow_outcome == flow_outcome
    assert report.hangup_cause == callee.hangup_cause and not report.interrupted
    assert "hangup" not in call.ops, "the callee ended it: nothing left to hang up"
    assert call.asterisk.channels == {}


def test_a_callee_who_hangs_up_at_once_costs_two_requests(tmp_path: Path) -> None:
    """Answered and hung up with no ringing (the lab's callee 8): the originate and the continue
    into AMD the answer asked for (refused: the channel is gone), no subscription and no look-up;
    with its hang-up in the queue when the answer is read, the originate alone."""

    call = dial(tmp_path, Callee(answer_after=0, hangup_on="answer"))
    assert call.outcome is Outcome.hangup_early and call.report.hangup_cause == 16
    assert call.ops == ["originate", "continue_in_dialplan"]
    assert call.notes == ["originated", "answered"]


# ------------------------------------------------------------------ ARI errors


@pytest.mark.parametrize(
    ("inject", "not_dialled", "ops", "left"),
    [
        (lambda a: a.unreachable("originate"), True, ["originate"], {}),
        (lambda a: a.fail("originate", 400, "Allocation failed"), False, ["originate"], {}),
    ],
    ids=["connect-error", "http-400"],
)
def test_a_failed_originate(
    tmp_path: Path,
    inject: Callable[[FakeAsterisk], None],
    not_dialled: bool,
    ops: list[str],
    left: dict[str, int],
) -> None:
    """ConnectError: nothing was placed, the attempt is not counted. A refusal: failed. (A read
    timeout is reconciled against Asterisk's channels: tests/unit/test_ari_faults_fake_ari.py.)"""
    call = dial(tmp_path, LISTENER, setup=lambda asterisk, ari: inject(asterisk))
    report = call.report
    assert report.not_dialled is not_dialled and report.originate_error
    assert call.ops == ops and call.notes == []
    assert call.asterisk.destroyed == left and call.asterisk.channels == {}


# ------------------------------------------------------------------ Asterisk restarts, sockets drop


@pytest.mark.parametrize(
    ("kind", "nth", "answered"),
    [
        ("ChannelStateChange", 1, False),  # ringing
        ("StasisEnd", 1, True),  # gone to AMD
        ("PlaybackStarted", 1, True),  # the intro
        ("PlaybackStarted", 2, True),  # the question
    ],
    ids=["ringing", "during-amd", "during-intro", "during-question"],
)
def test_an_asterisk_restart_mid_call_interrupts_it(
    tmp_path: Path, kind: str, nth: int, answered: bool
) -> None:
    call = dial(
        tmp_path,
        confirms("1"),
        setup=lambda asterisk, ari: asterisk.when(kind, asterisk.restart, channel=ATTEMPT, nth=nth),
    )
    assert call.report.interrupted and call.outcome is Outcome.interrupted
    assert call.report.answered is answered and call.report.hangup_cause is None
    assert call.asterisk.restarts == 1


def test_a_dropped_socket_with_the_call_still_up_carries_on(tmp_path: Path) -> None:
    call = dial(
        tmp_path,
        confirms("1"),
        setup=lambda asterisk, ari: asterisk.when("PlaybackStarted", ari.drop, channel=ATTEMPT, nth=2),
    )
    assert call.outcome is Outcome.confirmed and not call.report.interrupted
    assert "get_playback" in call.ops, "after the reconnect the runner asked whether its prompt still plays"


# ------------------------------------------------------------------ adopted after a dialer restart


def _found(stage: Stage) -> Callable[[FakeAsterisk], dict[str, Any]]:
    """The channel as `GET /channels` lists it when the restarted dialer looks."""

    def place(asterisk: FakeAsterisk) -> dict[str, Any]:
        return asterisk.place(ATTEMPT, ENDPOINT, stage=stage, callee=confirms("1")).json()

    return place


@pytest.mark.parametrize(
    ("stage", "ops"),
    [
        ("ringing", ["subscribe", "continue_in_dialplan", "play", "play", "play", "hangup"]),
        ("amd", ["subscribe", "play", "play", "play", "hangup"]),
    ],
)
def test_a_call_found_ringing_or_in_amd_is_followed_to_its_end(
    tmp_path: Path, stage: Stage, ops: list[str]
) -> None:
    call = dial(tmp_path, confirms("1"), resume=_found(stage))
    assert call.report.detail["resumed"] and call.outcome is Outcome.confirmed
    assert call.ops == ops, "no second originate; subscribed to hear it outside Stasis"


def test_a_call_found_in_stasis_lost_its_flow_and_is_hung_up(tmp_path: Path) -> None:
    call = dial(tmp_path, confirms("1"), resume=_found("stasis"))
    assert call.report.interrupted and call.report.answered
    assert call.ops == ["hangup"] and call.asterisk.destroyed == {ATTEMPT: 16}


def _gone_before_adopted(asterisk: FakeAsterisk) -> dict[str, Any]:
    found = _found("amd")(asterisk)
    asterisk.hangup_by_callee(ATTEMPT)  # between the restarted dialer's GET /channels and its follow-up
    return found


def test_a_call_gone_before_it_is_adopted_is_interrupted_at_once(tmp_path: Path) -> None:
    call = dial(tmp_path, confirms("1"), resume=_gone_before_adopted)
    assert call.report.interrupted and call.seconds < 60

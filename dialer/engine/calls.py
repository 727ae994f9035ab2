"""One outbound call, from the originate to the hang-up, reduced to the facts that classify it.

The call is originated into the Stasis application, which subscribes the app to the channel for
its whole life (so Asterisk reports every state change, the hang-up cause of an unanswered call,
and the events while it runs dialplan: no explicit subscription is needed); once answered it is
sent to ``warmline-amd`` where ``AMD()`` runs and the channel re-enters Stasis with the verdict.
Then: a machine gets the message after its beep or is retried (per campaign), a person gets the
campaign's IVR flow, and a transfer goes to agent routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.handover import CallOrigin, Handover, HandoverRequest, QueuePolicy
from agents.handover.call import NumberGate
from agents.routing import ANY_SKILL
from core.ari import RECONNECTED, AriClient, AriError
from core.ari_events import ChannelEvents, EventDispatcher, event_time
from dialer.engine.originate import StrayWatch, locate, lost_answer
from dialer.outcomes import CallFacts
from ivr.flow import Flow, PlayNode, is_personal, render
from ivr.runner import FlowResult, FlowRunner
from ivr.survey import SurveyAnswer, run_survey
from ivr.tts import media_uri

log = logging.getLogger(__name__)

JSON = dict[str, Any]
AMD_CONTEXT = "warmline-amd"
DIAL_ARG = "dialer"
AMD_ARG = "amd"
END_WAIT = 10.0  # seconds to wait for ChannelDestroyed once the call is over for us
MACHINE_BEEP_WAIT = 12.0  # seconds to wait for a machine's greeting and beep to finish
MAX_CALL_SECONDS = 3600.0
# A paced campaign's live answer goes to an agent found within the grace whose phone (auto-answer,
# or kept on the line) answers within this many seconds of being rung; else the apology.
PACED_ANSWER_WITHIN = 1.5
PACED_RING_TIMEOUT = 2
CALLER_LEFT = frozenset({"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"})

Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class CallPlan:
    """How a campaign's calls are placed, taken from the campaign when it is read."""

    campaign: str
    endpoint: str  # the dial template filled in with the number
    app: str
    amd_policy: str  # leave_message | retry
    flow: Flow | None
    caller_id: str | None
    ring_timeout: int
    agent_campaign: bool = False
    elder_welfare: bool = False
    # What an agent needs to take an answered call of an agent campaign without a flow.
    skill: str | None = None
    language: str | None = None
    min_level: str | None = None  # the campaign's least agent level (agents.routing.LEVELS)
    # The list columns the agent's screen pop shows (the campaign's script's and `screen_pop`'s).
    pop_fields: tuple[str, ...] = ()
    # Paced campaigns (progressive, predictive): a live answer waits this long after AMD's verdict
    # for an agent, then hears `apology` and is abandoned (the 2-second rule, docs/pacing.md).
    grace_s: float | None = None
    apology: str | None = None
    # The campaign's post-call survey flow (``survey: true``): the callee is kept on the line when
    # the agent hangs up first and rates the call 1-5 (ivr.survey); None: no survey.
    survey: Flow | None = None


@dataclass
class CallReport:
    answered: bool = False
    hangup_cause: int | None = None
    amd_status: str | None = None
    amd_cause: str | None = None
    flow_outcome: str | None = None
    escalate: bool = False
    message_left: bool = False
    digits: str = ""
    interrupted: bool = False
    originate_error: str | None = None
    not_dialled: bool = False  # Asterisk could not be reached: no call was placed
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def facts(self) -> CallFacts:
        return CallFacts(
            answered=self.answered,
            hangup_cause=self.hangup_cause,
            amd_status=self.amd_status,
            flow_outcome=self.flow_outcome,
            message_left=self.message_left,
        )


def endpoint_for(template: str, e164: str) -> str:
    """The ARI endpoint for a number: the template with {number} as digits only (no '+')."""
    digits = "".join(ch for ch in e164 if ch.isdigit())
    return template.format(number=digits)


def _seconds_between(first: JSON | None, then: JSON) -> float | None:
    """Seconds from one ARI event to another on Asterisk's clock (their ``timestamp``s)."""
    start, end = event_time(first), event_time(then)
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


def first_message(flow: Flow) -> PlayNode | None:
    """The flow's message for an answering machine: the first play node on the path from start."""
    seen: set[str] = set()
    node_id: str | None = flow.start
    while node_id is not None and node_id not in seen:
        seen.add(node_id)
        node = flow.nodes.get(node_id)
        if isinstance(node, PlayNode):
            return node
        node_id = getattr(node, "next", None) if node is not None else None
    return next((n for n in flow.nodes.values() if isinstance(n, PlayNode)), None)


class Call:
    """Drives one attempt's channel; `run()` returns the report, whatever happens."""

    def __init__(
        self,
        ari: AriClient,
        dispatcher: EventDispatcher,
        runner: FlowRunner,
        plan: CallPlan,
        attempt_id: str,
        fields: Mapping[str, object],
        notify: Notify,
        *,
        resume: JSON | None = None,
        resume_app: str | None = None,
        handover: Handover | None = None,
        origin: CallOrigin | None = None,
        epoch: Callable[[], int] = lambda: 0,
        number_gate: NumberGate | None = None,
        strays: StrayWatch | None = None,
        ari_slow: Callable[[], bool] = lambda: False,
    ) -> None:
        self.ari = ari
        self.ari_slow = ari_slow  # the node's ARI answers slowly now (dialer.engine.pressure)
        self.strays = strays  # ids of originates given up on (hung up should they appear)
        self._agent: str | None = None  # the agent who answered this call, once one has
        self.dispatcher = dispatcher
        self.runner = runner
        self.plan = plan
        self.id = attempt_id
        self.fields = dict(fields)
        self.notify = notify
        self.resume = resume  # the channel as ARI lists it, when following after a restart
        # The app to subscribe to a resumed channel: the one it is in (a dead worker's, adopted, or
        # the shared app), never a second one of ours (each event would come twice); None: ours.
        self.resume_app = resume_app
        self.handover = handover  # None: this process has no agents to hand calls to
        self.origin = origin or CallOrigin(campaign=plan.campaign, attempt_id=attempt_id)
        self.report = CallReport()
        self._destroyed = False
        self.epoch = epoch  # the node's connection count: it changes when ARI reconnects
        self.number_gate = number_gate  # outside numbers an agent may transfer this call to
        self._epoch0 = epoch()
        self._events: ChannelEvents | None = None
        self._verdict_at: float | None = None  # loop time of AMD's verdict
        self._verdict_event: JSON | None = None  # the StasisStart that brought it (Asterisk's clock)

    # ------------------------------------------------------------ entry

    async def run(self) -> CallReport:
        events = self.dispatcher.subscribe(self.id)
        self._events = events
        try:
            async with asyncio.timeout(MAX_CALL_SECONDS):
                if self.resume is None:
                    if not await self._originate():
                        return self.report
                else:
                    await self._adopt(self.resume)
                await self._follow(events)
            self._judge_restart()
        except TimeoutError:
            self.report.detail["error"] = "call ran past the dialer's limit; hung up"
            await self._hangup()
        except Exception as exc:  # a bug must not leave the attempt open or the channel up
            log.exception("call %s failed", self.id)
            self.report.detail["error"] = f"{type(exc).__name__}: {exc}"
            self._keep_conversation()
            await self._hangup()
        finally:
            self.dispatcher.unsubscribe(self.id)
        return self.report

    def _judge_restart(self) -> None:
        """An answered call whose end nobody saw (no hang-up cause) while ARI reconnected was cut
        by Asterisk restarting or going away: interrupted, whatever the flow had got to."""
        if self.report.answered and self.report.hangup_cause is None and self.epoch() != self._epoch0:
            self.report.interrupted = True

    async def _originate(self) -> bool:
        prepare = None
        if self.plan.flow is not None:
            prepare = asyncio.ensure_future(self.runner.prepare(self.plan.flow, self.fields))
            prepare.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            await self.ari.originate(
                self.plan.endpoint,
                channel_id=self.id,
                app=self.plan.app,
                app_args=DIAL_ARG,
                timeout=self.plan.ring_timeout,
                caller_id=self.plan.caller_id,
            )
        except AriError as exc:
            if lost_answer(exc) and await self._found_after_timeout(exc):
                pass  # Asterisk did place it: followed like any other call, never dialled again
            else:
                if prepare is not None:
                    prepare.cancel()
                self.report.originate_error = str(exc)
                self.report.not_dialled = exc.status == 0 and exc.message.startswith("ConnectError")
                return False
        # No subscription of our own: the originate into the app subscribed it to the channel until
        # the channel is gone (resource_channels.c; res_stasis counts subscriptions, so leaving
        # Stasis for AMD keeps it), and the answer costs one request (continue into AMD).
        await self.notify("originated", {})
        return True

    def _hung_up(self) -> bool:
        """The channel's hang-up has arrived: a request on it would only fail (and cost CPU)."""
        return self._events is not None and self._events.hung_up

    async def _found_after_timeout(self, exc: AriError) -> bool:
        """The originate's answer was lost: does Asterisk have the channel? True: follow it. False:
        it is watched from now on, and hung up should the originate still arrive (docs/faults.md)."""
        found = await locate(self.ari, self.id)
        self.report.detail["originate_timeout"] = found.state
        log.warning("call %s: originate answer lost (%s); the channel is %s", self.id, exc, found.state)
        if found.state == "exists":
            return True
        if self.strays is not None:
            self.strays.add(self.id)
        if found.state == "unknown":
            await self._hangup()  # ARI could not say: end the call should it exist
        return False

    async def _adopt(self, channel: JSON) -> None:
        """Follow a channel found alive after a restart. One waiting to be answered or running
        AMD will (re-)enter Stasis and is handled as usual; one already in Stasis lost the flow
        that drove it, so it is hung up (outcome: interrupted)."""
        self.report.detail["resumed"] = True
        up = channel.get("state") == "Up"
        if up:
            self.report.answered = True
        dialplan = channel.get("dialplan") or {}
        if up and dialplan.get("app_name") == "Stasis":
            self.report.interrupted = True
            await self._hangup()
        elif not up:
            # Whether Asterisk still holds the originate's subscription for the app after this
            # process went away is not ours to know: subscribed, so AMD's dialplan is heard. A
            # channel gone meanwhile is found by the follow's look-up.
            with contextlib.suppress(AriError):
                await self._subscribe_channel()
        else:
            try:
                await self._subscribe_channel()
            except AriError as exc:
                if exc.status not in (404, 422):  # 422: "Event source does not exist"
                    raise
                # Gone between the listing and now: nobody saw how it ended.
                self.report.interrupted = True
                self._destroyed = True

    # ------------------------------------------------------------ events

    async def _subscribe_channel(self) -> None:
        await self.ari.subscribe(f"channel:{self.id}", app=self.resume_app)

    def _mine(self, event: JSON) -> bool:
        channel = event.get("channel")
        return isinstance(channel, dict) and channel.get("id") == self.id

    async def _see(self, event: JSON) -> None:
        if self._mine(event) and event["channel"].get("state") == "Up" and not self.report.answered:
            self.report.answered = True
            await self.notify("answered", {})
        if event.get("type") == "ChannelDestroyed" and self._mine(event):
            self._destroyed = True
            cause = event.get("cause")
            if isinstance(cause, int):
                self.report.hangup_cause = cause

    async def _alive(self) -> bool:
        try:
            await self.ari.get_channel(self.id)
        except AriError as exc:
            return exc.status not in (404,)
        return True

    async def _follow(self, events: ChannelEvents) -> None:
        ring_deadline = asyncio.get_running_loop().time() + self.plan.ring_timeout + 30
        while not self._destroyed:
            timeout = (
                None if self.report.answered else max(1.0, ring_deadline - asyncio.get_running_loop().time())
            )
            event = await events.wait_for(lambda e: True, timeout=timeout)
            if event is None:
                if not await self._alive():
                    self.report.interrupted = not self.report.answered and self.report.hangup_cause is None
                    return
                if not self.report.answered:
                    await self._hangup()
                    ring_deadline += 30
                continue
            kind = event.get("type")
            if kind == RECONNECTED:
                if not await self._alive():
                    # Gone while no event came: cut by Asterisk restarting (a new epoch), or,
                    # on the same Asterisk after a lease gap, hung up by the callee if answered.
                    self.report.interrupted = self.epoch() != self._epoch0 or not self.report.answered
                    return
                continue
            await self._see(event)
            if kind == "StasisStart" and self._mine(event):
                args = [str(a) for a in event.get("args") or []]
                if args[:1] == [DIAL_ARG]:
                    await self._answered_in_stasis()
                elif args[:1] == [AMD_ARG]:
                    self._verdict_event = event
                    await self._after_amd(events, args)
                    await self._wait_end(events)
                    return

    async def _answered_in_stasis(self) -> None:
        if not self.report.answered:
            self.report.answered = True
            await self.notify("answered", {})
        if self._hung_up():
            return  # answered and hung up at once (its end is in the queue): no AMD to run
        try:
            await self.ari.continue_in_dialplan(self.id, AMD_CONTEXT, "s", 1)
        except AriError as exc:
            if exc.status not in (404, 422) and await self._alive():  # the channel is gone
                raise
            log.debug("call %s gone before AMD: %s", self.id, exc)

    async def _after_amd(self, events: ChannelEvents, args: list[str]) -> None:
        status = args[1] if len(args) > 1 else "NOTSURE"
        self._verdict_at = asyncio.get_running_loop().time()
        self.report.amd_status = status
        self.report.amd_cause = args[2] if len(args) > 2 else None
        await self.notify("amd", {"status": status, "cause": self.report.amd_cause})
        if status == "MACHINE":
            if self.plan.amd_policy == "leave_message" and self.plan.flow is not None:
                await self._leave_message(events)
            await self._hangup()
            return
        if status == "HANGUP":
            return
        if self.plan.flow is not None:
            result = await self.runner.run(self.id, self.plan.flow, self.fields, events)
            self._take_flow(result)
            if result.transfer is not None:
                await self._to_agent(result)
            elif result.ended == "callee_hangup" and result.hangup_cause is not None:
                self.report.hangup_cause = result.hangup_cause
                self._destroyed = True
            elif result.ended == "callee_hangup" and self.epoch() != self._epoch0:
                self._destroyed = True  # vanished while ARI was away: see _judge_restart
        elif self.plan.agent_campaign:
            await self._to_agent(None)
        else:
            await self._hangup()

    def _take_flow(self, result: FlowResult) -> None:
        self.report.flow_outcome = result.outcome
        self.report.escalate = result.escalate
        self.report.digits = result.keys
        self.report.detail["flow"] = {
            "path": result.path[-20:],
            "ended": result.ended,
            "digits": result.digits,
            **({"error": result.error} if result.error else {}),
            **({"warnings": result.warnings[:5]} if result.warnings else {}),
        }

    async def _to_agent(self, result: FlowResult | None) -> None:
        """Put the live call through to an agent; the call's outcome says whether one took it."""
        transfer = result.transfer if result is not None else None
        skill = transfer.skill if transfer is not None else self.plan.skill
        language = transfer.language if transfer is not None else self.plan.language
        if self.handover is None:
            log.warning("call %s wants an agent (skill %s) but this process has no hand-over", self.id, skill)
            self.report.detail["agent"] = "unbridged: no agent hand-over in this process"
            self.report.flow_outcome = "abandoned"
            await self._hangup()
            return
        priority = transfer.priority if transfer is not None else 0
        policy = QueuePolicy(priority=priority)
        if self.plan.grace_s is not None:
            # The 2-second rule: an agent within the grace, or the apology. No music in between:
            # the caller has just said "喂？" and hears the agent or the message next.
            policy = QueuePolicy(
                priority=priority,
                timeout=self.plan.grace_s,
                moh=None,
                poll_every=0.1,
                ring_timeout=PACED_RING_TIMEOUT,
                answer_within=PACED_ANSWER_WITHIN,
                inbound_first=True,
                timeout_includes_ring=True,
            )
        request = HandoverRequest(
            self.id,
            skill=None if skill == ANY_SKILL else skill,
            language=language,
            min_level=self.plan.min_level,
            origin=self.origin,
            policy=policy,
            on_agent=self._agent_took,
            number_gate=self.number_gate,
            keep_caller=self.plan.survey is not None,
        )
        handed = await self.handover.connect(request)
        if self.plan.grace_s is not None:
            self.report.detail["agent_wait_s"] = (
                handed.wait_seconds
            )  # AMD's verdict to the agent, or given up
            if handed.nailed:
                self.report.detail["nailed"] = True  # put through an agent kept on the line
        if handed.outcome == "abandoned" and self.plan.apology:
            await self._apologise(self.plan.apology)
        # connected: talked to an agent; abandoned / caller_hangup: answered, but no agent took it.
        # An error after the agent answered is still a conversation that happened.
        self.report.flow_outcome = "agent" if handed.answered or self._agent else "abandoned"
        self.report.detail["agent"] = str(handed)[:200]
        if handed.error:
            self.report.detail["agent_error"] = handed.error[:300]
        if handed.agent:
            self.report.detail["agent_name"] = handed.agent
        if handed.recording_id:
            self.report.detail["recording"] = handed.recording_id
        if handed.recording_via:
            self.report.detail["recording_via"] = handed.recording_via  # a nailed call: AMI or snoops
        if handed.caller_kept:
            await self._survey(handed.agent)
        await self._hangup()

    async def _survey(self, agent: str | None) -> None:
        """The agent hung up first: the callee rates the call 1-5; the runtime stores the score
        with the attempt, the agent and the campaign (the `survey` notice)."""
        if self.plan.survey is None or self._events is None:
            return
        try:
            answer = await run_survey(self.runner, self.id, self.plan.survey, self._events)
        except AriError as exc:  # the callee left during it: no score
            log.debug("call %s: survey cut short: %s", self.id, exc)
            answer = SurveyAnswer(None)
        self.report.detail["survey"] = answer.score
        if answer.comment:
            self.report.detail["survey_comment"] = answer.comment
        if answer.score is not None:
            notice = {"score": answer.score, "agent": agent or self._agent, "comment": answer.comment}
            await self.notify("survey", notice)

    async def _apologise(self, text: str) -> None:
        """No agent within the grace: the campaign's recorded apology (prepared when the campaign
        was read, so this is a cache hit), then the call ends. What was played, and how long after
        AMD's verdict it started, go into the attempt's detail: ``after_s`` on the dialer's clock
        (the verdict seen to the play request answered), ``heard_after_s`` on Asterisk's (the
        channel's StasisStart with the verdict to its PlaybackStarted: what the callee heard)."""
        loop = asyncio.get_running_loop()
        note: dict[str, Any] = {"played": False}
        self.report.detail["apology"] = note
        try:
            path = await self.runner.prompts.speak(text)
            playback_id = f"apology-{uuid.uuid4().hex}"
            await self.ari.play(self.id, [media_uri(path)], playback_id=playback_id)
        except Exception as exc:  # no prompt or the caller gone: the call is abandoned all the same
            note["error"] = f"{type(exc).__name__}: {exc}"[:200]
            return
        if self._verdict_at is not None:
            note["after_s"] = round(loop.time() - self._verdict_at, 3)
        if self.ari_slow():  # Asterisk itself answered slowly: why the 2 s may have been missed
            note["ari_slow"] = True
        if self._events is None:
            return
        deadline = loop.time() + 60.0
        caller_left = False
        while not self._destroyed and loop.time() < deadline:
            event = await self._events.wait_for(lambda e: True, timeout=deadline - loop.time())
            if event is None:
                return
            await self._see(event)
            kind = event.get("type")
            caller_left = caller_left or (kind in CALLER_LEFT and self._mine(event))
            playback = event.get("playback") or {}
            if kind == "PlaybackStarted" and playback.get("id") == playback_id:
                note["played"] = True
                heard = _seconds_between(self._verdict_event, event)
                if heard is not None:
                    note["heard_after_s"] = heard
            if kind == "PlaybackFinished" and playback.get("id") == playback_id:
                # Asterisk says "failed" also when the callee hangs up during it: heard, cut short.
                failed = playback.get("state") == "failed"
                cut_short = failed and note["played"] and (caller_left or not await self._alive())
                note["played"] = not failed or cut_short
                if cut_short:
                    note["cut_short"] = True
                note["finished"] = True
                return

    async def _agent_took(self, agent: str) -> None:
        """The agent answered: the attempt becomes theirs now, before the call ends, so their
        wrap-up (often posted before the dialer has closed the call) is known to be theirs."""
        self._agent = agent
        self.report.detail["agent_name"] = agent
        await self.notify("agent", {"agent": agent})

    def _keep_conversation(self) -> None:
        """An error once an agent had answered (the recording's merge, the database) does not undo
        the conversation: the call stays the agent's, never `abandoned` and redialled."""
        if self._agent is not None:
            self.report.answered = True
            self.report.flow_outcome = "agent"
            self.report.detail.setdefault("agent_name", self._agent)

    async def _leave_message(self, events: ChannelEvents) -> None:
        """Wait for the machine's greeting and beep to end, then play the flow's message once."""
        assert self.plan.flow is not None
        node = first_message(self.plan.flow)
        if node is None:
            return
        with contextlib.suppress(AriError):
            await self.ari.set_variable(self.id, "TALK_DETECT(set)", "1200,256")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MACHINE_BEEP_WAIT
        talking, quiet_since = True, loop.time()
        while loop.time() < deadline:
            wait = (
                deadline - loop.time()
                if talking
                else min(deadline - loop.time(), quiet_since + 1.5 - loop.time())
            )
            if wait <= 0:
                break
            event = await events.wait_for(lambda e: True, timeout=wait)
            if event is None:
                if not talking:
                    break
                continue
            await self._see(event)
            if self._destroyed:
                return
            if event.get("type") == "ChannelTalkingStarted":
                talking = True
            elif event.get("type") == "ChannelTalkingFinished":
                talking, quiet_since = False, loop.time()
        if node.file is not None:
            return  # a recorded file needs the runner's lookup; keep the machine path simple
        text, _missing = render(
            node.say or "", {k: "" if v is None else str(v) for k, v in self.fields.items()}
        )
        if not text.strip():
            return
        path = await self.runner.prompts.speak(text, self.plan.flow.voice, personal=is_personal(node.say))
        playback_id = f"msg-{uuid.uuid4().hex}"
        try:
            await self.ari.play(self.id, [media_uri(path)], playback_id=playback_id)
        except AriError:
            return
        while True:
            event = await events.wait_for(lambda e: True, timeout=120)
            if event is None:
                return
            await self._see(event)
            if self._destroyed:
                return
            playback = event.get("playback") or {}
            if event.get("type") == "PlaybackFinished" and playback.get("id") == playback_id:
                self.report.message_left = playback.get("state") != "failed"
                return

    # ------------------------------------------------------------ ending

    async def _hangup(self) -> None:
        with contextlib.suppress(AriError):
            await self.ari.hangup(self.id)

    async def _wait_end(self, events: ChannelEvents) -> None:
        """After our part: make sure the channel is gone and learn its cause."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + END_WAIT
        hung_up = False
        while not self._destroyed:
            event = await events.wait_for(lambda e: True, timeout=max(0.1, deadline - loop.time()))
            if event is None:
                if not await self._alive():
                    return
                if hung_up:
                    return
                await self._hangup()
                hung_up = True
                deadline = loop.time() + END_WAIT
                continue
            await self._see(event)

"""Put a live call through to an agent: queue, ring with a screen pop, bridge, record in stereo.

    handover = Handover(HandoverDeps(ari, dispatcher, db, settings, queues))
    result = await handover.connect(HandoverRequest(channel_id, skill="welfare", origin=origin))

The dialer (an answered outbound call whose flow asks for an agent, or an agent campaign) and the
hotline (an inbound caller who chose a queue) both come here. What happens:

1. The caller waits in the skill's queue (first come, first served; higher ``priority`` first)
   hearing music on hold, with an optional announcement every ``announce_every`` seconds.
2. At the head of the queue the call reserves an agent (agents.routing: available, skilled, on
   the call's line, speaking its language, longest idle, fairness) -- further back, only an agent
   none of the calls ahead could take (agents.handover.queue) -- the agent is marked ``on_call``
   at once -- and rings them:
   ``PJSIP/<endpoint>`` originated into the dialplan context ``warmline-record`` with the screen
   pop's ``X-Warmline-*`` headers. An agent who does not answer within ``ring_timeout`` is put on
   ``break`` (reason ``no_answer``) and the next agent is tried.
3. When the agent answers, ``warmline-record`` starts MixMonitor on the agent's leg and hands the
   leg to Stasis; both legs go into a mixing bridge.
4. When either side hangs up the other leg is hung up, the bridge destroyed, and the recording
   handed to ``recordings.capture`` (merged to stereo and registered). The agent goes to
   ``wrap_up`` unless their softphone has reported a newer state itself.
   With ``keep_caller``, when the agent hangs up first the caller's leg is only taken out of the
   bridge (``caller_kept``), for the post-call survey.
5. No agent within ``timeout`` seconds: ``abandoned``, the caller's channel left up for the
   caller of :meth:`Handover.connect` to end or to offer a callback.

Database work runs in worker threads, never on the event loop. Time comes from an injected
monotonic clock so tests drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from agents import routing
from agents.handover.call import AgentTook, HandoverRequest, HandoverResult, queued_by_agent
from agents.handover.nailed_recording import recording_facts
from agents.handover.queue import SkillQueues
from agents.handover.screen_pop import header_value, screen_pop_headers
from agents.help.service import CHECK_IN_AFTER, COOLDOWN_MESSAGE, Cooldown, RestRules, after_call
from core.ari import AriClient, AriError
from core.ari_events import HANGUP_EVENTS, ChannelEvents, EventDispatcher
from core.call_tickets import mint, ticket_secret
from core.db import Database, utcnow
from core.formats import time_of_day
from core.i18n import DEFAULT_LOCALE, translate
from core.messages import CallEvent
from core.settings import Settings
from recordings.capture import RecordingFacts, StereoCapture

Publish = Callable[[CallEvent], Awaitable[Any]]  # the bus's publish

if TYPE_CHECKING:
    from agents.handover.nailed import NailedAgents
    from agents.transfer.conversation import Requeue

log = logging.getLogger(__name__)

PROCESS_QUEUES = SkillQueues()
_RESERVE_LOCK = routing.RESERVE_LOCK  # one reservation at a time in this process

JSON = dict[str, Any]
RECORD_CONTEXT = "warmline-record"
LEG_GONE = frozenset({"ChannelDestroyed", "ChannelHangupRequest"})
_BACKGROUND: set[asyncio.Task[None]] = set()  # clean-ups no caller waits for (kept from the GC)


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


@dataclass
class HandoverDeps:
    """What the hand-over needs from its process: one per Asterisk node, sharing ``queues``."""

    ari: AriClient
    dispatcher: EventDispatcher
    db: Database
    settings: Settings
    queues: SkillQueues = PROCESS_QUEUES  # outbound and inbound callers wait in one line
    clock: Callable[[], float] | None = None  # seconds for waits and timeouts; None: the loop's clock
    now: Callable[[], datetime] = utcnow  # wall time for the agents' state ledger
    # Agents kept on the line (agents.handover.nailed): a paced call goes into a free nailed
    # agent's bridge with no ring before any agent is rung.
    nailed: NailedAgents | None = None
    # The bus, for the check-in alert when a call earns its agent a rest; None: the wallboard's
    # help panel (it polls) shows the rest all the same.
    publish: Publish | None = None


class Handover:
    """The hand-over service of one Asterisk node."""

    def __init__(self, deps: HandoverDeps) -> None:
        self.deps = deps

    async def connect(self, request: HandoverRequest) -> HandoverResult:
        """Queue, ring, bridge and record; returns when the conversation is over (``connected``),
        when no agent answered in time (``abandoned``) or when the caller left (``caller_hangup``)."""
        nailed = self.deps.nailed
        if nailed is not None and request.policy.inbound_first and nailed.legs:
            through = await nailed.connect(
                request, ahead=self.deps.queues.inbound_needs(), requeue=self._requeue_for(request)
            )
            if through is not None:
                return through
        dispatcher = self.deps.dispatcher
        owned = request.channel_id not in dispatcher
        events = dispatcher.subscribe(request.channel_id)
        try:
            return await _Run(self.deps, request, events).run()
        finally:
            if owned:
                dispatcher.unsubscribe(request.channel_id)

    def _requeue_for(self, request: HandoverRequest) -> Requeue:
        """A call's blind transfer to a skill: the caller (back) into this hand-over's queue."""

        async def requeue(skill: str | None, took: AgentTook, passed_on: frozenset[str]) -> HandoverResult:
            return await Handover(self.deps).connect(requeued(request, skill, took, passed_on))

        return requeue


def requeued(
    request: HandoverRequest, skill: str | None, took: AgentTook, passed_on: frozenset[str]
) -> HandoverRequest:
    """The caller an agent handed to a skill's queue (or whose transfer nobody answered): waiting
    as a queue's caller, never offered back to who handed them on."""
    origin = replace(request.origin, preferred_agent=None)
    return replace(
        request, skill=skill, origin=origin, on_agent=took, announce=None,
        policy=queued_by_agent(request.policy), passed_on=request.passed_on | passed_on,
    )  # fmt: skip


async def _check_in(publish: Publish, call_ref: str, rest: Cooldown, timezone: str) -> None:
    """The check-in alert on the bus (as after an abusive call): supervisors read it, the agent's
    softphone may say the rest (both in Chinese, the centre's language)."""
    detail = {
        "agent": rest.agent,
        "reason": rest.reason,
        "until": rest.until.isoformat(),
        "minutes": rest.minutes,
        "message": translate(DEFAULT_LOCALE, CHECK_IN_AFTER[rest.reason], agent=rest.agent),
        "agent_message": translate(
            DEFAULT_LOCALE, COOLDOWN_MESSAGE, minutes=rest.minutes, until=time_of_day(rest.until, timezone)
        ),
    }
    try:
        await publish(CallEvent(call_id=call_ref, kind="check_in", detail=detail))
    except Exception:  # the cool-down row is the record; the wallboard's poll shows it
        log.exception("check-in alert for %s", rest.agent)


async def rest_after(
    db: Database,
    settings: Settings,
    now: datetime,
    publish: Publish | None,
    call_ref: str,
    agent: str,
    talk_seconds: float,
) -> Cooldown | None:
    """A call escalated to a supervisor or longer than the limit gives its agent a cool-down (no
    call offered meanwhile) and asks supervisors to check in (agents.help): after a rung call,
    a nailed call (agents.handover.nailed) and a call the agent placed (agents.placed_calls).
    Never the call's failure: a database error is logged."""
    rules = RestRules(
        settings.escalated_cooldown_minutes,
        settings.long_call_minutes,
        settings.long_call_cooldown_minutes,
    )

    def write() -> Cooldown | None:
        with db.session() as session:
            return after_call(session, agent, call_ref, talk_seconds, now, rules)

    try:
        rest = await asyncio.to_thread(write)
    except SQLAlchemyError:
        log.exception("cool-down after call %s of %s", call_ref, agent)
        return None
    if rest is not None and publish is not None:
        await _check_in(publish, call_ref, rest, settings.timezone)
    return rest


def _is_hangup(event: JSON, channel_id: str) -> bool:
    return event.get("type") in HANGUP_EVENTS and event.get("channel", {}).get("id") == channel_id


def _cause(event: JSON) -> int | None:
    cause = event.get("cause")
    return int(cause) if isinstance(cause, int) else None


class _Run:
    """One call's hand-over, from joining the queue to the recording."""

    def __init__(self, deps: HandoverDeps, request: HandoverRequest, events: ChannelEvents) -> None:
        self.deps = deps
        self.ari = deps.ari
        self.req = request
        self.policy = request.policy
        self.cid = request.channel_id
        self.skill = request.skill or None
        self.need = routing.Need(self.skill, request.line, request.language, request.min_level)
        self.events = events
        self.headers = screen_pop_headers(
            request.origin,
            skill=self.skill,
            attempt=request.origin.attempt_id or self.cid,
            language=request.language,
        )
        self.result = HandoverResult(outcome="error")
        self.customer_gone = False
        self._moh_on = False
        self.clock = deps.clock or asyncio.get_running_loop().time
        self._t0 = self.clock()
        self.capture: StereoCapture | None = None
        self.leg = ""  # the answered agent's channel

    # ---------------------------------------------------- events

    async def _next(self, timeout: float) -> JSON | None:  # noqa: ASYNC109
        if timeout <= 0:
            return None
        try:
            async with asyncio.timeout(timeout):
                event = await self.events.get()
        except TimeoutError:
            return None
        if _is_hangup(event, self.cid):
            self.customer_gone = True
            self.result.customer_cause = _cause(event) or self.result.customer_cause
        return event

    def _drain(self) -> None:
        """Read what has already arrived (the hang-up's cause, when a poll found the caller gone)."""
        while (event := self.events.get_nowait()) is not None:
            if _is_hangup(event, self.cid):
                self.result.customer_cause = _cause(event) or self.result.customer_cause

    async def _alive(self, channel_id: str) -> bool:
        try:
            await self.ari.get_channel(channel_id)
        except AriError as exc:
            return exc.status != 404
        return True

    async def _hold(self, on: bool) -> None:
        moh = self.policy.moh
        if moh is None or on == self._moh_on or self.customer_gone:
            return
        try:
            if on:
                await self.ari.start_moh(self.cid, moh)
            else:
                await self.ari.stop_moh(self.cid)
            self._moh_on = on
        except AriError as exc:
            log.info("music on hold %s for %s: %s", "on" if on else "off", self.cid, exc)

    # ---------------------------------------------------- the run

    async def run(self) -> HandoverResult:
        queues = self.deps.queues
        queues.join(self.skill, self.cid, self.policy.priority, self.need)
        try:
            await self._hold(True)
            await self._queue_and_ring()
        except Exception as exc:
            log.exception("agent hand-over for %s failed", self.cid)
            self.result.outcome = "error"
            self.result.error = f"{type(exc).__name__}: {exc}"
        finally:
            queues.leave(self.skill, self.cid)
            if not self.result.answered:
                self.result.wait_seconds = round(self.clock() - self._t0, 3)
            if self.result.outcome != "connected":
                await self._hold(False)
        return self.result

    async def _queue_and_ring(self) -> None:
        clock = self.clock
        deadline = self._t0 + self.policy.timeout
        next_announce = self._t0 + self.policy.announce_every
        nailed = self.deps.nailed
        exclude = set(self.req.passed_on)  # they handed this caller on
        while True:
            if nailed is not None:
                exclude |= nailed.held()  # their phone is taken (nailed up since, too)
            if self.customer_gone or not await self._alive(self.cid):
                self.customer_gone = True
                self._drain()
                self.result.outcome, self.result.ended_by = "caller_hangup", "customer"
                return
            if clock() >= deadline:
                self.result.outcome, self.result.ended_by = "abandoned", "system"
                return
            position = self.deps.queues.position(self.skill, self.cid)
            ahead = self.deps.queues.ahead(self.skill, self.cid)
            if self.policy.inbound_first:
                ahead = ahead + self.deps.queues.inbound_needs()
            # Behind a call that asks for the same, nobody is for us: only the head looks.
            if position >= 1 and self.need not in ahead:
                through = await self._nailed_agent(ahead)
                if through is not None:
                    self.result = through
                    return
                agent, reserved_at = await self._reserve(exclude, ahead)
                if agent is not None:
                    self.result.agents_tried.append(agent.agent)
                    if await self._ring(agent, reserved_at):
                        self.deps.queues.leave(self.skill, self.cid)  # the next caller moves up now
                        await self._talk(agent, reserved_at)
                        return
                    exclude.add(agent.agent)
                    continue
            if self.req.announce is not None and clock() >= next_announce and position > 0:
                next_announce = clock() + self.policy.announce_every
                await self._hold(False)
                try:
                    await self.req.announce(position)
                finally:
                    await self._hold(True)
            await self._next(max(0.05, min(self.policy.poll_every, deadline - clock())))

    async def _nailed_agent(self, ahead: list[routing.Need]) -> HandoverResult | None:
        """An agent kept on the line who came free while the caller waits (a paced call inside
        its grace; a caller its agent handed to a queue): into their bridge, no ring. None: none."""
        nailed = self.deps.nailed
        if nailed is None or not self.policy.inbound_first or not nailed.any_free():
            return None
        waited = self.clock() - self._t0

        async def put_through() -> None:  # reserved: out of the queue, the music off
            self.deps.queues.leave(self.skill, self.cid)
            await self._hold(False)

        through = await nailed.connect(self.req, ahead=ahead, requeue=self._requeue, reserved=put_through)
        if through is not None:
            through.wait_seconds = round(through.wait_seconds + waited, 3)
        return through

    async def _reserve(
        self, exclude: set[str], ahead: list[routing.Need]
    ) -> tuple[routing.AgentCandidate | None, datetime]:
        now = self.deps.now()
        need = self.need

        def pick() -> routing.AgentCandidate | None:
            with _RESERVE_LOCK, self.deps.db.session() as session:
                return routing.reserve_agent(
                    session,
                    need.skill,
                    exclude=exclude,
                    now=now,
                    tz=self.deps.settings.timezone,
                    prefer=self.req.origin.preferred_agent,
                    line=need.line,
                    language=need.language,
                    ahead=ahead,
                    min_level=need.min_level,
                )

        try:
            return await asyncio.to_thread(pick), now
        except SQLAlchemyError as exc:
            # The database is away (or locked): the caller keeps their place in the queue and
            # the next poll asks again; a database error never drops a waiting caller.
            log.warning("call %s: no agent could be reserved, database error: %s", self.cid, exc)
            return None, now

    async def _release(self, agent: str, state: str, reason: str, reserved_at: datetime) -> None:
        def write() -> None:
            with self.deps.db.session() as session:
                routing.release_agent(session, agent, state, reason, reserved_at=reserved_at)

        try:
            await asyncio.to_thread(write)
        except SQLAlchemyError as exc:
            log.warning("agent %s could not be released (%s), database error: %s", agent, reason, exc)

    def _facts(self, agent: str) -> RecordingFacts:
        return recording_facts(self.req.origin, agent)

    async def _ring(self, agent: routing.AgentCandidate, reserved_at: datetime) -> bool:
        """Ring the agent; True once their leg is answered and in Stasis (else they are released)."""
        leg = f"agent-{uuid.uuid4()}"
        capture = StereoCapture.plan(self.deps.settings.recordings_dir, now=self.deps.now())
        self.capture = capture
        self.deps.dispatcher.alias(self.cid, leg)
        await capture.begin(self._facts(agent.agent))
        try:
            await self.ari.originate(
                f"PJSIP/{agent.endpoint}",
                channel_id=leg,
                context=RECORD_CONTEXT,
                extension="s",
                priority=1,
                variables={"WARMLINE_REC_FILE": capture.base, **self.headers, **self._ticket(agent.agent)},
                timeout=self.policy.ring_timeout,
                caller_id=f'"{self.req.origin.campaign or "warmline"}" <warmline>',
            )
        except AriError as exc:
            log.warning("ringing agent %s failed: %s", agent.agent, exc)
            await self._release(agent.agent, "break", "no_answer", reserved_at)
            await capture.discard(grace=0)
            return False
        with contextlib.suppress(AriError):
            await self.ari.subscribe(f"channel:{leg}")
        verdict = await self._await_answer(leg)
        if verdict == "answered":
            self.leg = leg
            return True
        with contextlib.suppress(AriError):
            await self.ari.hangup(leg)
        if verdict == "caller_timeout":
            # The caller's grace is over: they hear the apology now; the files of a leg that may
            # have answered at the last instant are removed once MixMonitor has closed them.
            await self._release(agent.agent, "available", verdict, reserved_at)
            _in_background(capture.discard())
        elif verdict == "caller_gone":
            await self._release(agent.agent, "available", verdict, reserved_at)
            await capture.discard()
        else:
            log.info("agent %s did not answer", agent.agent)
            await self._release(agent.agent, "break", "no_answer", reserved_at)
            await capture.discard(grace=0)
        return False

    def _ticket(self, agent: str) -> dict[str, str]:
        """The header that lets this agent's phone fetch the call's script and form (only theirs)."""
        origin = self.req.origin
        ticket = mint(
            ticket_secret(self.deps.settings.var_dir),
            call_ref=origin.attempt_id or self.cid,
            agent=agent,
            now=self.deps.now(),
            campaign=origin.campaign,
            line=origin.line,
        )
        return {"PJSIP_HEADER(add,X-Warmline-Ticket)": header_value(ticket)}

    async def _await_answer(
        self, leg: str
    ) -> Literal["answered", "no_answer", "caller_gone", "caller_timeout"]:
        clock = self.clock
        within = self.policy.answer_within
        deadline = clock() + (within if within is not None else self.policy.ring_timeout + 5)
        caller_deadline = self._t0 + self.policy.timeout
        cut_by_caller = self.policy.timeout_includes_ring and caller_deadline < deadline
        if cut_by_caller:
            deadline = caller_deadline
        last_check = clock()
        while True:
            event = await self._next(min(deadline - clock(), self.policy.poll_every))
            if self.customer_gone:
                return "caller_gone"
            if event is not None and event.get("channel", {}).get("id") == leg:
                if event.get("type") == "StasisStart":
                    return "answered"
                if event.get("type") in LEG_GONE:
                    return "no_answer"
            if clock() - last_check > 2 * self.policy.poll_every:
                last_check = clock()
                if not await self._alive(leg):  # gone before our subscription took effect
                    return "no_answer"
            if clock() >= deadline:
                return "caller_timeout" if cut_by_caller else "no_answer"

    async def _talk(self, agent: routing.AgentCandidate, reserved_at: datetime) -> None:
        from agents.transfer.conversation import Conversation, Party, TalkDeps, TalkHooks

        clock = self.clock
        leg = self.leg
        self.result.agent = agent.agent
        self.result.wait_seconds = round(clock() - self._t0, 3)
        await self._tell_agent_took(agent.agent)
        bridge_id = f"bridge-{uuid.uuid4()}"
        self.deps.dispatcher.alias(self.cid, bridge_id)
        talk = Conversation(
            TalkDeps(self.ari, self.deps.dispatcher, self.deps.db, self.deps.settings, clock, self.deps.now),
            self.events,
            call_ref=self.req.origin.attempt_id or self.cid,
            customer=self.cid,
            bridge=bridge_id,
            origin=self.req.origin,
            skill=self.skill,
            first=Party(agent.agent, leg, reserved_at, self.capture),
            hooks=TalkHooks(
                facts=self._facts,
                on_agent=self.req.on_agent,
                requeue=self._requeue,
                number_gate=self.req.number_gate,
                free_phone=self.deps.nailed.release if self.deps.nailed is not None else None,
            ),
        )
        talk_started = clock()
        try:
            await self.ari.create_bridge("mixing", bridge_id=bridge_id, name=f"agent-{agent.agent}")
            await self._hold(False)
            await self.ari.add_channel(bridge_id, [self.cid, leg])
            # Only now are the two talking: a failure before this is a call no agent took.
            self.result.outcome, self.result.answered = "connected", True
            talk_started = clock()
            self.result.ended_by = await talk.run()
        finally:
            self.result.talk_seconds = round(clock() - talk_started, 3)
            self.result.ended_by = self.result.ended_by or "system"
            self.result.customer_cause = talk.customer_cause or self.result.customer_cause
            keep = self.req.keep_caller and self.result.ended_by == "agent" and not talk.customer_gone
            for channel in talk.live_legs() if keep else (*talk.live_legs(), self.cid):
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel)
            if keep:
                with contextlib.suppress(AriError):
                    await self.ari.remove_channel(bridge_id, self.cid)
                self.result.caller_kept = await self._alive(self.cid)
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(bridge_id)
            await talk.close()
            self.result.agent = talk.last_agent or agent.agent
            await self._rest_after(talk.call_ref, self.result.agent, self.result.talk_seconds)
            first = talk.first
            if first.recording_id is not None and self.capture is not None:
                self.result.recording_id = first.recording_id
                self.result.recording_path = self.capture.stored_path()

    async def _rest_after(self, call_ref: str, agent: str, talk_seconds: float) -> None:
        deps = self.deps
        await rest_after(deps.db, deps.settings, deps.now(), deps.publish, call_ref, agent, talk_seconds)

    async def _requeue(self, skill: str | None, took: AgentTook, passed_on: frozenset[str]) -> HandoverResult:
        """The caller goes (back) into a skill's queue: the hand-over's own, the screen pop and
        script going with the call."""
        return await Handover(self.deps).connect(requeued(self.req, skill, took, passed_on))

    async def _tell_agent_took(self, agent: str) -> None:
        """The caller learns who took the call; its failure is logged, never the call's end."""
        if self.req.on_agent is None:
            return
        try:
            await self.req.on_agent(agent)
        except Exception:
            log.exception("noting agent %s on call %s failed", agent, self.cid)

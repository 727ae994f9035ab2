"""A call an agent places: their own phone rings first, then the far end; bridged and recorded.

    call = PlacedCall(HandoverDeps(ari, dispatcher, db, settings), PlacedCallRequest(...))
    result = await call.run()

The dialer places these for an agent's preview contact, personal callback or typed number
(dialer.agent_dial); this module knows only channels, the agent and what the screen pop says.

1. The agent is marked ``on_call`` (reason ``placed``): routing offers them nothing else meanwhile.
2. Their endpoint is originated into ``warmline-record`` with the screen pop's ``X-Warmline-*``
   headers (``X-Warmline-Attempt`` is the call's id, so their wrap-up is for this call, and
   ``X-Warmline-Placed`` tells their softphone it asked for it). Once they answer, MixMonitor
   records their leg and it enters Stasis (``agent-leg``).
3. They hear ringing while the far end is originated into the app with the call's id as its
   channel id (``placed``): the attempt and the channel share the id, as for every dialer call.
4. When the far end answers, both go into a mixing bridge. When either hangs up the other is hung
   up, the bridge destroyed, the recording merged and registered (recordings.capture), and the
   agent goes to ``wrap_up`` unless their softphone has said something newer.

The agent does not answer: nobody else was called, and they are made available again (or put on a
break, when it was the dialer that rang them for their callback). The far end
is busy, does not answer or cannot be reached, or the agent hangs up while it rings: the agent's
leg is ended and the far end's hang-up cause kept for the attempt's outcome. Database work runs in
worker threads; time comes from the deps' clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from agents import routing
from agents.handover.call import AgentTook, CallOrigin, HandoverRequest, HandoverResult, NumberGate
from agents.handover.screen_pop import screen_pop_headers
from agents.handover.service import LEG_GONE, RECORD_CONTEXT, Handover, HandoverDeps, rest_after
from core.ari import AriError
from core.ari_events import ChannelEvents
from recordings.capture import RecordingFacts, StereoCapture

log = logging.getLogger(__name__)

JSON = dict[str, Any]
PLACED_ARG = "placed"  # the far end's Stasis argument
PLACED_REASON = "placed"  # the agent's on_call reason while their own call is set up
RINGBACK = "tone:ring"
POLL = 1.0  # seconds between checks that a leg whose end we may have missed is still there

Outcome = Literal["connected", "agent_no_answer", "agent_hangup", "not_answered", "not_placed", "error"]
Progress = Callable[[str], Awaitable[None]]
"""Told ``agent_answered``, ``originated`` (the far end is being dialled) and ``answered``."""


@dataclass(frozen=True)
class PlacedCallRequest:
    """One call an agent asked for. ``destination`` is the far end as ARI dials it (the node's
    dial template filled in); the origin's number is masked: nothing here is a full number."""

    call_id: str  # the far end's channel id (the dialer's attempt id)
    agent: str
    agent_endpoint: str  # the agent's PJSIP endpoint
    destination: str
    origin: CallOrigin
    caller_id: str | None = None  # what the far end sees
    agent_ring_timeout: int = 30
    ring_timeout: int = 30  # seconds the far end may ring
    on_progress: Progress | None = None
    on_agent: AgentTook | None = None  # a transfer handed the call to this agent (their wrap-up)
    number_gate: NumberGate | None = None  # outside numbers the call may be transferred to
    # The agent's state when they do not answer: "available" when they asked for the call; "break"
    # (reason no_answer, as the hand-over does) when the dialer rang them for their callback.
    unanswered_state: str = "available"


@dataclass
class PlacedCallResult:
    outcome: Outcome = "error"
    agent_answered: bool = False
    far_end_dialled: bool = False  # an originate of the far end was (or may have been) placed
    answered: bool = False  # the far end answered
    hangup_cause: int | None = None  # the far end's, when it ended unanswered
    ended_by: Literal["agent", "customer", "system"] | None = None
    talk_seconds: float = 0.0
    recording_id: str | None = None
    agent: str | None = None  # the agent who had the call last (a transfer may have handed it on)
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.outcome == "connected":
            return f"connected for {self.talk_seconds:.0f} s, ended by {self.ended_by}"
        return self.outcome + (f" (cause {self.hangup_cause})" if self.hangup_cause is not None else "")


def _about(event: JSON, channel_id: str) -> bool:
    return (event.get("channel") or {}).get("id") == channel_id


def _cause(event: JSON) -> int | None:
    cause = event.get("cause")
    return cause if isinstance(cause, int) else None


def _connect_error(exc: AriError) -> bool:
    """Asterisk could not be reached: the request did nothing."""
    return exc.status == 0 and exc.message.startswith("ConnectError")


class PlacedCall:
    """One agent-placed call, from ringing the agent to the registered recording."""

    def __init__(self, deps: HandoverDeps, request: PlacedCallRequest) -> None:
        self.deps = deps
        self.ari = deps.ari
        self.req = request
        self.leg = f"agent-{uuid.uuid4()}"
        self.result = PlacedCallResult()
        self.capture: StereoCapture | None = None
        self.events: ChannelEvents | None = None
        self.reserved_at: datetime | None = None
        self.released = False
        self._ringback: str | None = None
        self._far_gone = False
        self._leg_gone = False

    @property
    def clock(self) -> Callable[[], float]:
        return self.deps.clock or asyncio.get_running_loop().time

    # ---------------------------------------------------- the run

    async def run(self) -> PlacedCallResult:
        dispatcher = self.deps.dispatcher
        self.events = dispatcher.subscribe(self.req.call_id)
        dispatcher.alias(self.req.call_id, self.leg)
        try:
            await self._reserve()
            if await self._ring_agent():
                await self._dial_far_end()
        except Exception as exc:  # a bug must leave no leg up and the agent free
            log.exception("placed call %s failed", self.req.call_id)
            self.result.outcome = "error"
            self.result.error = f"{type(exc).__name__}: {exc}"[:300]
            await self._hang_up(self.req.call_id, self.leg)
            await self._release("available", "placed_call_failed")
            if self.capture is not None and self.result.recording_id is None:
                await self.capture.discard(grace=0)
        finally:
            dispatcher.unsubscribe(self.req.call_id)
        return self.result

    async def _tell(self, what: str) -> None:
        if self.req.on_progress is None:
            return
        try:
            await self.req.on_progress(what)
        except Exception:  # the caller's bookkeeping must not end the call
            log.exception("placed call %s: noting %s failed", self.req.call_id, what)

    # ---------------------------------------------------- the agent's leg

    async def _ring_agent(self) -> bool:
        """Ring the agent; True once their leg is answered and in Stasis."""
        capture = StereoCapture.plan(self.deps.settings.recordings_dir, now=self.deps.now())
        self.capture = capture
        await capture.begin(self._facts())
        headers = screen_pop_headers(self.req.origin, skill=None, attempt=self.req.call_id)
        headers["PJSIP_HEADER(add,X-Warmline-Placed)"] = "1"
        try:
            await self.ari.originate(
                f"PJSIP/{self.req.agent_endpoint}",
                channel_id=self.leg,
                context=RECORD_CONTEXT,
                extension="s",
                priority=1,
                variables={"WARMLINE_REC_FILE": capture.base, **headers},
                timeout=self.req.agent_ring_timeout,
                caller_id=f'"{self.req.origin.campaign or "warmline"}" <warmline>',
            )
        except AriError as exc:
            log.warning("ringing agent %s for a placed call failed: %s", self.req.agent, exc)
            self.result.outcome = "not_placed" if _connect_error(exc) else "error"
            self.result.error = str(exc)[:300]
            if exc.status == 0 and not _connect_error(exc):
                await self._hang_up(self.leg)  # the request may have got through
            await self._release("available", "placed_call_failed")
            await capture.discard(grace=0)
            return False
        with contextlib.suppress(AriError):
            await self.ari.subscribe(f"channel:{self.leg}")
        if await self._agent_answers():
            self.result.agent_answered = True
            await self._tell("agent_answered")
            return True
        await self._hang_up(self.leg)
        self.result.outcome = "agent_no_answer"
        reason = "placed_call_unanswered" if self.req.unanswered_state == "available" else "no_answer"
        await self._release(self.req.unanswered_state, reason)
        await capture.discard(grace=0)
        return False

    async def _agent_answers(self) -> bool:
        deadline = self.clock() + self.req.agent_ring_timeout + 5
        next_check = self.clock() + 2 * POLL
        while self.clock() < deadline:
            event = await self._next(min(POLL, deadline - self.clock()))
            if event is not None and _about(event, self.leg):
                if event.get("type") == "StasisStart":
                    return True
                if event.get("type") in LEG_GONE:
                    return False
            if self.clock() >= next_check:
                next_check = self.clock() + 2 * POLL
                if not await self._alive(self.leg):  # gone before our subscription took effect
                    return False
        return False

    # ---------------------------------------------------- the far end

    async def _dial_far_end(self) -> None:
        await self._start_ringback()
        try:
            await self.ari.originate(
                self.req.destination,
                channel_id=self.req.call_id,
                app=self.ari.app,
                app_args=PLACED_ARG,
                timeout=self.req.ring_timeout,
                caller_id=self.req.caller_id,
            )
        except AriError as exc:
            log.warning("placed call %s: dialling the far end failed: %s", self.req.call_id, exc)
            self.result.outcome = "not_placed" if _connect_error(exc) else "error"
            self.result.error = str(exc)[:300]
            self.result.far_end_dialled = not _connect_error(exc)
            if exc.status == 0 and not _connect_error(exc):
                await self._hang_up(self.req.call_id)  # the request may have got through
            await self._not_reached()
            return
        self.result.far_end_dialled = True
        with contextlib.suppress(AriError):
            await self.ari.subscribe(f"channel:{self.req.call_id}")
        await self._tell("originated")
        verdict = await self._far_end_answers()
        if verdict == "answered":
            self.result.answered = True
            await self._tell("answered")
            await self._talk()
            return
        if verdict == "agent_gone":
            self.result.outcome = "agent_hangup"
            await self._hang_up(self.req.call_id)
            await self._learn_far_cause()
        else:
            self.result.outcome = "not_answered"
        await self._not_reached()

    async def _far_end_answers(self) -> Literal["answered", "gone", "agent_gone"]:
        call_id = self.req.call_id
        deadline = self.clock() + self.req.ring_timeout + 30
        next_check = self.clock() + 2 * POLL
        while True:
            event = await self._next(min(POLL, max(0.05, deadline - self.clock())))
            if event is not None:
                kind = event.get("type")
                if _about(event, call_id):
                    if kind == "StasisStart":
                        return "answered"
                    if kind in ("ChannelHangupRequest", "ChannelDestroyed"):
                        self.result.hangup_cause = _cause(event) or self.result.hangup_cause
                        if kind == "ChannelDestroyed":
                            self._far_gone = True
                            return "gone"
                elif _about(event, self.leg) and kind in LEG_GONE:
                    self._leg_gone = True
                    return "agent_gone"
            if self.clock() >= deadline:
                await self._hang_up(call_id)  # rang past its timeout without Asterisk ending it
                return "gone"
            if self.clock() >= next_check:
                next_check = self.clock() + 2 * POLL
                if not await self._alive(self.leg):
                    self._leg_gone = True
                    return "agent_gone"
                if not await self._alive(call_id):
                    self._far_gone = True
                    return "gone"

    async def _learn_far_cause(self) -> None:
        """After hanging up a far end that was still ringing: its ChannelDestroyed, for the cause."""
        deadline = self.clock() + 3.0
        while not self._far_gone and self.clock() < deadline:
            event = await self._next(deadline - self.clock())
            if (
                event is not None
                and _about(event, self.req.call_id)
                and event.get("type") == "ChannelDestroyed"
            ):
                self._far_gone = True
                self.result.hangup_cause = _cause(event) or self.result.hangup_cause

    async def _not_reached(self) -> None:
        """Nobody to talk to: the agent's leg ends; their softphone opens the wrap-up."""
        await self._stop_ringback()
        await self._hang_up(self.leg)
        await self._release("wrap_up", "call_ended")
        if self.capture is not None:
            await self.capture.discard()

    # ---------------------------------------------------- the conversation

    async def _talk(self) -> None:
        from agents.transfer.conversation import Conversation, Party, TalkDeps, TalkHooks

        call_id = self.req.call_id
        bridge_id = f"bridge-{uuid.uuid4()}"
        self.deps.dispatcher.alias(call_id, bridge_id)
        assert self.events is not None
        talk = Conversation(
            TalkDeps(
                self.ari, self.deps.dispatcher, self.deps.db, self.deps.settings, self.clock, self.deps.now
            ),
            self.events,
            call_ref=call_id,
            customer=call_id,
            bridge=bridge_id,
            origin=self.req.origin,
            skill=None,
            first=Party(self.req.agent, self.leg, self.reserved_at, self.capture),
            hooks=TalkHooks(
                facts=lambda agent: replace(self._facts(), agent=agent),
                on_agent=self.req.on_agent,
                requeue=self._requeue,
                number_gate=self.req.number_gate,
            ),
        )
        self.released = True  # from here on the conversation releases the agents on the call
        started = self.clock()
        try:
            await self._stop_ringback()
            await self.ari.create_bridge("mixing", bridge_id=bridge_id, name=f"placed-{self.req.agent}")
            await self.ari.add_channel(bridge_id, [call_id, self.leg])
            self.result.outcome = "connected"
            started = self.clock()
            self.result.ended_by = await talk.run()
        finally:
            self.result.talk_seconds = round(self.clock() - started, 3)
            self.result.ended_by = self.result.ended_by or "system"
            await self._hang_up(*talk.live_legs(), call_id)
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(bridge_id)
            await talk.close()
            self.result.agent = talk.last_agent or self.req.agent
            self.result.recording_id = talk.first.recording_id
            # An escalated or very long call rests its agent, as a call the service rang them with.
            deps = self.deps
            await rest_after(
                deps.db, deps.settings, deps.now(), deps.publish, call_id, self.result.agent,
                self.result.talk_seconds,
            )  # fmt: skip

    async def _requeue(self, skill: str | None, took: AgentTook, passed_on: frozenset[str]) -> HandoverResult:
        """The caller goes into a skill's queue (a blind transfer to it, or one nobody answered),
        never offered back to who handed them on."""
        request = HandoverRequest(
            self.req.call_id, skill=skill, origin=self.req.origin, on_agent=took, passed_on=passed_on
        )
        return await Handover(self.deps).connect(request)

    # ---------------------------------------------------- small parts

    def _facts(self) -> RecordingFacts:
        origin = self.req.origin
        return RecordingFacts(
            agent=self.req.agent,
            campaign=origin.campaign,
            campaign_id=origin.campaign_id,
            elder_welfare=origin.elder_welfare,
            contact_id=origin.contact_id,
            attempt_id=self.req.call_id,
        )

    async def _next(self, timeout: float) -> JSON | None:  # noqa: ASYNC109
        assert self.events is not None
        if timeout <= 0:
            return None
        try:
            async with asyncio.timeout(timeout):
                return await self.events.get()
        except TimeoutError:
            return None

    async def _alive(self, channel_id: str) -> bool:
        try:
            await self.ari.get_channel(channel_id)
        except AriError as exc:
            return exc.status != 404
        return True

    async def _hang_up(self, *channel_ids: str) -> None:
        for channel_id in channel_ids:
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel_id)

    async def _start_ringback(self) -> None:
        """What the agent hears while the far end rings (ringing is not sent on an answered leg)."""
        playback_id = f"ringback-{uuid.uuid4()}"
        try:
            await self.ari.play(self.leg, RINGBACK, playback_id=playback_id)
        except AriError as exc:
            log.info("ringback for %s: %s", self.req.agent, exc)
            return
        self._ringback = playback_id

    async def _stop_ringback(self) -> None:
        if self._ringback is not None:
            with contextlib.suppress(AriError):
                await self.ari.stop_playback(self._ringback)
            self._ringback = None

    async def _reserve(self) -> None:
        """Mark the agent on a call, so routing sends them nothing while their own call is set up."""
        now = self.deps.now()

        def write() -> None:
            with self.deps.db.session() as session:
                routing.set_state(session, self.req.agent, "on_call", PLACED_REASON, since=now)

        await asyncio.to_thread(write)
        self.reserved_at = now

    async def _release(self, state: str, reason: str) -> None:
        """Once: the agent's state after the call, unless their softphone has said something newer."""
        if self.released or self.reserved_at is None:
            return
        self.released = True
        reserved_at = self.reserved_at

        def write() -> None:
            with self.deps.db.session() as session:
                routing.release_agent(session, self.req.agent, state, reason, reserved_at=reserved_at)

        try:
            await asyncio.to_thread(write)
        except Exception:
            log.exception("agent %s could not be released after a placed call", self.req.agent)

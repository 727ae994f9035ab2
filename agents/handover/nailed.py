"""Agents kept on the line (nailed up) for paced campaigns: no ring between calls.

    nailed = NailedAgents(NailedDeps(ari, dispatcher, db, settings, publish=bus.publish))
    await nailed.nail_up("mei", "mei-endpoint")       # called once, when the agent goes free
    result = await nailed.connect(request)             # None: no nailed agent free, ring as before

An agent of a progressive or predictive campaign who goes free is called once: their phone is
originated into Stasis (arguments ``nailed,<agent>``) and the answered leg is put in a mixing bridge
of its own (``nailed-<agent>-…``), where the agent hears silence. When a callee is classified live,
:meth:`NailedAgents.connect` reserves a free nailed agent (agents.routing, the same rules as the
ringing hand-over, only among nailed agents) and adds the callee's channel to that agent's bridge:
no INVITE, no ring. At that instant the agent hears a short tone (``tone_media`` played on their
leg) and the screen pop (the ``X-Warmline-*`` fields the ringing hand-over sends as SIP headers,
here as a ``CallEvent`` of kind ``screen_pop`` on the bus, topic ``calls/<attempt>``) is
published; the agent's softphone fetches it from the API (agents.screen_pops), and the end
(``screen_pop_end``) when the callee leaves. The agent's leg is called with ``X-Warmline-Nailed``
so the softphone knows it for the open line, not a call.

When the callee hangs up, the agent's leg stays in its bridge (still nailed) and the agent goes
to ``wrap_up`` as after any call; they are offered the next callee once they are ``available``
again; a call escalated to a supervisor or longer than the limit rests them first, as a rung
call does (agents.handover.service.rest_after: a cool-down, no callee offered). When the agent
hangs up their leg, the nailed state ends (a callee in the bridge is hung up): the agent is rung
normally again until they are nailed up anew.

``bridge_ms`` in the result's ``detail`` is the time from the call to :meth:`connect` (AMD's live
verdict, in the dialer) to the answer of the ``add_channel`` request that put the callee in the
agent's bridge.

The call is recorded in stereo from the moment the callee is in the bridge until they leave it
(agents.handover.nailed_recording: MixMonitor on the callee's channel started over AMI when the
node has it, else two snoops on the callee recorded by ARI; merged and registered as a rung call's
MixMonitor recording is); the result names the recording and how it was made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agents import routing
from agents.handover.call import HandoverRequest, HandoverResult
from agents.handover.nailed_recording import (
    MIXMON_VAR,
    NailedRecording,
    RecordingDeps,
    recording_facts,
    start_recording,
)
from agents.handover.screen_pop import screen_pop_headers
from agents.handover.service import rest_after
from core.ami import AmiClient
from core.ari import AriClient, AriError
from core.ari_events import CONNECTION_EVENTS, HANGUP_EVENTS, ChannelEvents, EventDispatcher, event_time
from core.db import Database, utcnow
from core.messages import CallEvent
from core.settings import Settings

if TYPE_CHECKING:  # agents.transfer imports the hand-over: imported where used
    from agents.transfer.conversation import Conversation, Party, Requeue

log = logging.getLogger(__name__)

JSON = dict[str, Any]
NAILED_ARG = "nailed"
NAILED_REASON = "nailed"
# The beep on the agent's leg when a callee is put through: the indications' "record" tone
# (1400 Hz, 0.5 s, then silence), stopped after TONE_SECONDS: a tone playback never ends by itself
# and, while it plays, the agent does not hear the bridge.
DEFAULT_TONE = "tone:record"
NAILED_HEADER = "PJSIP_HEADER(add,X-Warmline-Nailed)"
TONE_SECONDS = 0.4
Publish = Callable[[CallEvent], Awaitable[Any]]


@dataclass
class NailedDeps:
    ari: AriClient
    dispatcher: EventDispatcher
    db: Database
    settings: Settings
    publish: Publish | None = None  # the bus (screen pop); None: logged only
    clock: Callable[[], float] | None = None
    now: Callable[[], datetime] = utcnow
    tone_media: str | None = DEFAULT_TONE
    tone_seconds: float = TONE_SECONDS
    answer_timeout: int = 20  # seconds the agent's phone may ring when nailing up
    ami: AmiClient | None = None  # the node's manager interface (the recording's MixMonitor); closed with us


@dataclass
class NailedLeg:
    """One agent's leg kept up in their holding bridge."""

    agent: str
    endpoint: str
    leg: str
    bridge: str
    callee: str | None = None  # the callee in the bridge now
    calls: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None


class NailedAgents:
    """The nailed-up agents of one Asterisk node."""

    def __init__(self, deps: NailedDeps) -> None:
        self.deps = deps
        self.ari = deps.ari
        self.legs: dict[str, NailedLeg] = {}  # agent -> their leg
        self._pending: set[str] = set()
        self._bridged: dict[str, ChannelEvents] = {}  # callee -> their call's events (told of the leg's end)
        self._tones: set[asyncio.Task[None]] = set()

    def _clock(self) -> float:
        return (self.deps.clock or asyncio.get_running_loop().time)()

    def nailed(self, agent: str) -> bool:
        leg = self.legs.get(agent)
        return leg is not None and not leg.ended.is_set()

    def any_free(self) -> bool:
        """A nailed agent with no callee in their bridge (whether available is the ledger's say)."""
        return any(n.callee is None and not n.ended.is_set() for n in self.legs.values())

    def held(self) -> set[str]:
        """Agents whose phone is busy with a nailed leg (or being called for one): never rung."""
        return {a for a, leg in self.legs.items() if not leg.ended.is_set()} | self._pending

    # ------------------------------------------------------------ nailing up

    async def nail_up(self, agent: str, endpoint: str) -> NailedLeg | None:
        """Call the agent once and park their answered leg in a bridge of its own; None when the
        phone did not answer (the agent stays rung normally)."""
        if self.nailed(agent) or agent in self._pending:
            return self.legs.get(agent)
        self._pending.add(agent)
        token = uuid.uuid4().hex[:12]
        leg, bridge = f"nailed-{token}", f"nailed-bridge-{token}"
        events = self.deps.dispatcher.subscribe(leg)
        try:
            try:
                await self.ari.originate(
                    f"PJSIP/{endpoint}",
                    channel_id=leg,
                    app_args=[NAILED_ARG, agent],
                    variables={NAILED_HEADER: "1"},  # the softphone: the open line, not a call
                    timeout=self.deps.answer_timeout,
                    caller_id='"warmline" <warmline>',
                )
            except AriError as exc:
                log.warning("nailing up agent %s failed: %s", agent, exc)
                self.deps.dispatcher.unsubscribe(leg)
                return None
            if not await self._answered(events, leg):
                with contextlib.suppress(AriError):
                    await self.ari.hangup(leg)
                self.deps.dispatcher.unsubscribe(leg)
                return None
            try:
                await self.ari.create_bridge("mixing", bridge_id=bridge, name=f"nailed-{agent}")
                await self.ari.add_channel(bridge, leg)
            except AriError as exc:
                log.warning("holding bridge for agent %s failed: %s", agent, exc)
                with contextlib.suppress(AriError):
                    await self.ari.hangup(leg)
                with contextlib.suppress(AriError):
                    await self.ari.destroy_bridge(bridge)
                self.deps.dispatcher.unsubscribe(leg)
                return None
            nailed = NailedLeg(agent, endpoint, leg, bridge)
            nailed.watcher = asyncio.create_task(self._watch(nailed, events), name=f"nailed-{agent}")
            self.legs[agent] = nailed
            log.info("agent %s nailed up on %s", agent, leg)
            return nailed
        finally:
            self._pending.discard(agent)

    async def _answered(self, events: ChannelEvents, leg: str) -> bool:
        deadline = self._clock() + self.deps.answer_timeout + 5
        while (left := deadline - self._clock()) > 0:
            try:
                async with asyncio.timeout(left):
                    event = await events.get()
            except TimeoutError:
                return False
            if event.get("channel", {}).get("id") != leg:
                continue
            if event.get("type") == "StasisStart":
                return True
            if event.get("type") in HANGUP_EVENTS:
                return False
        return False

    async def _watch(self, nailed: NailedLeg, events: ChannelEvents) -> None:
        """The agent's leg ends: no longer nailed (a callee in their bridge is hung up too). At a
        (re)connection of the event stream the leg is looked up: its end may have been lost with
        the socket, and a callee put into an empty bridge would hear silence."""
        try:
            while True:
                event = await events.get()
                kind = event.get("type")
                if kind in CONNECTION_EVENTS:
                    if await self._leg_gone(nailed):
                        break
                    continue
                channel = event.get("channel", {}).get("id")
                if channel == nailed.leg and kind in HANGUP_EVENTS | {"StasisEnd"}:
                    break
        finally:
            await self._unnail(nailed)

    async def _leg_gone(self, nailed: NailedLeg) -> bool:
        """Is the agent's leg no longer in its holding bridge? An answer that says nothing (ARI
        away) keeps the agent nailed: the leg's own events, or the next reconnection, will tell."""
        try:
            bridge = await self.ari.get_bridge(nailed.bridge)
        except AriError as exc:
            if exc.status == 404:
                log.warning("agent %s: holding bridge gone while events were lost", nailed.agent)
                return True
            log.warning("agent %s: holding bridge not looked up (%s); kept", nailed.agent, exc)
            return False
        if nailed.leg in bridge.get("channels", ()):
            return False
        log.warning("agent %s: nailed leg gone while events were lost", nailed.agent)
        return True

    async def _unnail(self, nailed: NailedLeg) -> None:
        if nailed.ended.is_set():
            return
        nailed.ended.set()
        if self.legs.get(nailed.agent) is nailed:
            del self.legs[nailed.agent]
        self.deps.dispatcher.unsubscribe(nailed.leg)
        if nailed.callee is not None:  # the call learns its agent's leg went (their conversation ends)
            call = self._bridged.get(nailed.callee)
            if call is not None:
                call.put({"type": "ChannelHangupRequest", "channel": {"id": nailed.leg}, "nailed": True})
        with contextlib.suppress(AriError):
            await self.ari.hangup(nailed.leg)
        with contextlib.suppress(AriError):
            await self.ari.destroy_bridge(nailed.bridge)
        log.info("agent %s no longer nailed up", nailed.agent)

    async def release(self, agent: str) -> None:
        """Hang up the agent's nailed leg (a break, logging out, the campaign paused). Its watcher
        is cancelled: left waiting on the leg's unsubscribed queue, it was destroyed pending (the
        pacing bench's service log said so after each break)."""
        nailed = self.legs.get(agent)
        if nailed is not None:
            if nailed.watcher is not None and nailed.watcher is not asyncio.current_task():
                nailed.watcher.cancel()
            await self._unnail(nailed)

    async def close(self) -> None:
        for nailed in list(self.legs.values()):
            if nailed.watcher is not None:
                nailed.watcher.cancel()
            await self._unnail(nailed)
        if self.deps.ami is not None:
            await self.deps.ami.aclose()

    # ------------------------------------------------------------ putting a callee through

    async def _reserve(
        self, request: HandoverRequest, ahead: Collection[routing.Need]
    ) -> tuple[NailedLeg | None, datetime]:
        free = {a: n for a, n in self.legs.items() if n.callee is None and not n.ended.is_set()}
        now = self.deps.now()
        if not free:
            return None, now

        def pick() -> routing.AgentCandidate | None:
            with routing.RESERVE_LOCK, self.deps.db.session() as session:
                rows = routing.candidates(session, now=now, tz=self.deps.settings.timezone)
                exclude = {row.agent for row in rows if row.agent not in free} | request.passed_on
                chosen = routing.choose_agent(
                    rows,
                    request.skill or None,
                    exclude=exclude,
                    prefer=request.origin.preferred_agent,
                    line=request.line,
                    language=request.language,
                    ahead=ahead,
                    min_level=request.min_level,
                )
                if chosen is not None:
                    routing.set_state(session, chosen.agent, "on_call", NAILED_REASON, since=now)
                return chosen

        chosen = await asyncio.to_thread(pick)
        if chosen is None:
            return None, now
        nailed = free.get(chosen.agent)
        if nailed is None or nailed.ended.is_set():  # hung up while we chose
            await self._release(chosen.agent, "available", "nailed_gone", now)
            return None, now
        return nailed, now

    async def _release(self, agent: str, state: str, reason: str, reserved_at: datetime) -> None:
        def write() -> None:
            with self.deps.db.session() as session:
                routing.release_agent(session, agent, state, reason, reserved_at=reserved_at)

        await asyncio.to_thread(write)

    async def connect(
        self,
        request: HandoverRequest,
        *,
        ahead: Collection[routing.Need] = (),
        requeue: Requeue | None = None,
        reserved: Callable[[], Awaitable[None]] | None = None,
    ) -> HandoverResult | None:
        """Put the live callee into a free nailed agent's bridge; None when no nailed agent is free
        (the caller rings one as before). Returns when the conversation is over, transfers
        included (``requeue``: the hand-over's queue, for a blind transfer to a skill).
        ``reserved`` runs once an agent is reserved, before the callee joins them (a caller
        waiting in the queue leaves it and their music stops)."""
        t0 = self._clock()
        nailed, reserved_at = await self._reserve(request, ahead)
        if nailed is None:
            return None
        if reserved is not None:
            await reserved()
        cid = request.channel_id
        nailed.callee = cid
        result = HandoverResult(outcome="error", agent=nailed.agent, agents_tried=[nailed.agent], nailed=True)
        owned = cid not in self.deps.dispatcher
        events = self.deps.dispatcher.subscribe(cid)  # the dialer's call's own queue when it has one
        self._bridged[cid] = events
        recording: asyncio.Task[NailedRecording | None] | None = None
        try:
            try:
                await self.ari.add_channel(nailed.bridge, cid)
            except AriError as exc:
                log.warning("callee %s into %s's bridge failed: %s", cid, nailed.agent, exc)
                result.error = str(exc)
                await self._release(nailed.agent, "available", "nailed_failed", reserved_at)
                return None if exc.status != 404 else _caller_gone(result)
            bridged = self._clock()
            result.answered, result.outcome = True, "connected"
            result.wait_seconds = round(bridged - t0, 3)
            nailed.calls += 1
            # Recorded from the moment the callee is in the bridge, as the agent is told of them.
            recording = asyncio.create_task(self._record(nailed, request, bridged), name=f"nailed-rec-{cid}")
            await self._announce(nailed, request)
            if request.on_agent is not None:
                try:
                    await request.on_agent(nailed.agent)
                except Exception:
                    log.exception("noting agent %s on call %s failed", nailed.agent, cid)
            span: dict[str, datetime | None] = {}
            finished: list[asyncio.Task[None]] = []

            async def left_call(party: Party) -> None:
                """The agent handed the caller on (a transfer): their line is free for the next
                callee, their part of the call is recorded and its pop ends."""
                nonlocal recording
                self._bridged.pop(cid, None)
                nailed.callee = None
                result.talk_seconds = round(self._clock() - bridged, 3)
                if recording is not None:
                    started, recording = recording, None
                    finished.append(asyncio.create_task(self._keep_recording(started, result, dict(span))))
                await self._publish_end(nailed, request, "transferred")

            talk = self._conversation(nailed, request, events, reserved_at, span, left_call, requeue)
            try:
                result.ended_by = await talk.run()
            finally:
                still_mine = not talk.first.done  # the nailed agent had the caller to the end
                if still_mine:
                    result.talk_seconds = round(self._clock() - bridged, 3)
                gone = talk.customer_gone or (events.hung_up and result.ended_by == "customer")
                for leg in talk.live_legs() if gone else (*talk.live_legs(), cid):
                    with contextlib.suppress(AriError):
                        await self.ari.hangup(leg)
                with contextlib.suppress(AriError):
                    await self.ari.remove_channel(nailed.bridge, cid)
                await talk.close()  # the nailed agent (if still on it) to wrap_up; their leg stays up
                result.agent = talk.last_agent or nailed.agent
            self._bridged.pop(cid, None)
            if still_mine:
                # An escalated or very long call rests its agent as a rung call does (agents.help).
                deps = self.deps
                call_ref = request.origin.attempt_id or cid
                await rest_after(
                    deps.db,
                    deps.settings,
                    deps.now(),
                    deps.publish,
                    call_ref,
                    nailed.agent,
                    result.talk_seconds,
                )
                nailed.callee = None  # free for the next callee once "ready", while the file is made
                await self._publish_end(nailed, request, result.ended_by or "system")
            # Handed over first: a cancellation from here on leaves the two sides for start-up's
            # recovery (recordings.capture.recover_orphans), never deletes a registered file.
            if recording is not None:
                started, recording = recording, None
                await self._keep_recording(started, result, span)
            await asyncio.gather(*finished)
            return result
        finally:
            if recording is not None:  # the call failed on the way: keep nothing half made
                await self._drop_recording(recording)
            self._bridged.pop(cid, None)
            if nailed.callee == cid:
                nailed.callee = None
            if owned:
                self.deps.dispatcher.unsubscribe(cid)

    def _conversation(
        self,
        nailed: NailedLeg,
        request: HandoverRequest,
        events: ChannelEvents,
        reserved_at: datetime,
        span: dict[str, datetime | None],
        left_call: Callable[[Party], Awaitable[None]],
        requeue: Requeue | None,
    ) -> Conversation:
        """The call from here on, as a rung call's (agents.transfer.conversation): the agent may
        transfer it, blind or after a consult; their leg stays nailed in its bridge throughout."""
        from agents.transfer.conversation import Conversation, Party, TalkDeps, TalkHooks, facts_for

        deps = self.deps
        cid = request.channel_id

        def seen(event: JSON) -> None:
            """The callee's bridged span (Asterisk's timestamps), where the recording's sides go."""
            if event.get("channel", {}).get("id") != cid:
                return
            kind = event.get("type")
            ours = event.get("bridge", {}).get("id") == nailed.bridge
            if kind == "ChannelEnteredBridge" and ours:
                if span.get("entered") is None:
                    span["entered"] = event_time(event)
                span["left"] = None  # back with the agent after a consult
            elif ((kind == "ChannelLeftBridge" and ours) or kind in HANGUP_EVENTS) and span.get(
                "left"
            ) is None:
                span["left"] = event_time(event)
            elif (
                kind == "ChannelVarset" and event.get("variable") == MIXMON_VAR and span.get("began") is None
            ):
                span["began"] = event_time(event)  # the recording's MixMonitor attached

        return Conversation(
            TalkDeps(self.ari, deps.dispatcher, deps.db, deps.settings, self._clock, deps.now),
            events,
            call_ref=request.origin.attempt_id or cid,
            customer=cid,
            bridge=nailed.bridge,
            origin=request.origin,
            skill=request.skill,
            first=Party(nailed.agent, nailed.leg, reserved_at, home=nailed.bridge),
            hooks=TalkHooks(
                facts=facts_for(recording_facts(request.origin, nailed.agent)),
                on_agent=request.on_agent,
                requeue=requeue,
                number_gate=request.number_gate,
                left_call=left_call,
                free_phone=self.release,
                seen=seen,
            ),
        )

    async def _record(
        self, nailed: NailedLeg, request: HandoverRequest, bridged: float
    ) -> NailedRecording | None:
        deps = self.deps
        facts = recording_facts(request.origin, nailed.agent)
        rec_deps = RecordingDeps(
            self.ari, deps.dispatcher, deps.db, deps.settings, now=deps.now, ami=deps.ami
        )
        recording = await start_recording(rec_deps, request.channel_id, facts)
        if recording is not None:  # how long after the bridge it began, on our clock (no ChannelVarset)
            recording.after_bridge_s = self._clock() - bridged
        return recording

    async def _keep_recording(
        self,
        started: asyncio.Task[NailedRecording | None],
        result: HandoverResult,
        span: dict[str, datetime | None],
    ) -> None:
        """The callee left: stop the recording, merge and register it (the call's result names it)."""
        try:
            recording = await started
        except Exception:
            log.exception("recording of %s's nailed call failed", result.agent)
            return
        if recording is None:
            return
        result.recording_via = recording.via
        result.recording_id = await recording.stop(
            entered=span.get("entered"), left=span.get("left"), began=span.get("began")
        )
        if result.recording_id is not None:
            result.recording_path = recording.capture.stored_path()

    async def _drop_recording(self, started: asyncio.Task[NailedRecording | None]) -> None:
        try:
            recording = await started
        except Exception:
            log.exception("recording of a nailed call failed")
            return
        if recording is not None:
            await recording.discard()

    async def _announce(self, nailed: NailedLeg, request: HandoverRequest) -> None:
        """The tone on the agent's leg and the screen pop on the bus, at the moment of the bridge."""
        origin = request.origin
        attempt = origin.attempt_id or request.channel_id
        pop = screen_pop_headers(origin, skill=request.skill, attempt=attempt, language=request.language)
        fields = {k.removeprefix("PJSIP_HEADER(add,X-Warmline-").removesuffix(")"): v for k, v in pop.items()}
        tasks: list[Awaitable[Any]] = []
        if self.deps.tone_media:
            tone_id = f"nailed-tone-{uuid.uuid4().hex[:12]}"
            tasks.append(self.ari.play(nailed.leg, self.deps.tone_media, tone_id))
            stop = asyncio.create_task(self._stop_tone(tone_id))
            self._tones.add(stop)
            stop.add_done_callback(self._tones.discard)
        if self.deps.publish is not None:
            event = CallEvent(
                call_id=attempt,
                campaign=origin.campaign,
                kind="screen_pop",
                detail={"agent": nailed.agent, "nailed": True, "fields": fields},
            )
            tasks.append(self.deps.publish(event))
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.warning("tone or screen pop for agent %s: %s", nailed.agent, outcome)

    async def _publish_end(self, nailed: NailedLeg, request: HandoverRequest, ended_by: str) -> None:
        """The callee left: the agent's phone ends the call's pop and starts its wrap-up."""
        if self.deps.publish is None:
            return
        origin = request.origin
        event = CallEvent(
            call_id=origin.attempt_id or request.channel_id,
            campaign=origin.campaign,
            kind="screen_pop_end",
            detail={"agent": nailed.agent, "nailed": True, "ended_by": ended_by},
        )
        try:
            await self.deps.publish(event)
        except Exception as exc:  # the bus is away: the call has ended all the same
            log.warning("end of screen pop for agent %s: %s", nailed.agent, exc)

    async def _stop_tone(self, playback_id: str) -> None:
        await asyncio.sleep(self.deps.tone_seconds)
        with contextlib.suppress(AriError):
            await self.ari.stop_playback(playback_id)


def _caller_gone(result: HandoverResult) -> HandoverResult:
    result.outcome, result.ended_by, result.answered = "caller_hangup", "customer", False
    return result

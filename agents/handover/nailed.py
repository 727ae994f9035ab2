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
(agents.handover.nailed_recording: two snoops on the callee recorded by ARI, merged and registered
as a rung call's MixMonitor recording is); the result names the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents import routing
from agents.handover.call import HandoverRequest, HandoverResult
from agents.handover.nailed_recording import RecordingDeps, SnoopRecording, recording_facts
from agents.handover.screen_pop import screen_pop_headers
from agents.handover.service import rest_after
from core.ari import AriClient, AriError
from core.ari_events import HANGUP_EVENTS, ChannelEvents, EventDispatcher
from core.db import Database, utcnow
from core.messages import CallEvent
from core.settings import Settings

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
        self._bridged: dict[str, asyncio.Event] = {}  # callee -> left the bridge / hung up
        self._tones: set[asyncio.Task[None]] = set()

    def _clock(self) -> float:
        return (self.deps.clock or asyncio.get_running_loop().time)()

    def nailed(self, agent: str) -> bool:
        leg = self.legs.get(agent)
        return leg is not None and not leg.ended.is_set()

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
        """The agent's leg ends: no longer nailed (a callee in their bridge is hung up too)."""
        try:
            while True:
                event = await events.get()
                kind = event.get("type")
                channel = event.get("channel", {}).get("id")
                if channel == nailed.leg and kind in HANGUP_EVENTS | {"StasisEnd"}:
                    break
        finally:
            await self._unnail(nailed)

    async def _unnail(self, nailed: NailedLeg) -> None:
        if nailed.ended.is_set():
            return
        nailed.ended.set()
        if self.legs.get(nailed.agent) is nailed:
            del self.legs[nailed.agent]
        self.deps.dispatcher.unsubscribe(nailed.leg)
        if nailed.callee is not None:
            gone = self._bridged.get(nailed.callee)
            if gone is not None:
                gone.set()
        with contextlib.suppress(AriError):
            await self.ari.hangup(nailed.leg)
        with contextlib.suppress(AriError):
            await self.ari.destroy_bridge(nailed.bridge)
        log.info("agent %s no longer nailed up", nailed.agent)

    async def release(self, agent: str) -> None:
        """Hang up the agent's nailed leg (a break, logging out, the campaign paused)."""
        nailed = self.legs.get(agent)
        if nailed is not None:
            await self._unnail(nailed)

    async def close(self) -> None:
        for nailed in list(self.legs.values()):
            if nailed.watcher is not None:
                nailed.watcher.cancel()
            await self._unnail(nailed)

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
                exclude = {row.agent for row in rows if row.agent not in free}
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
        self, request: HandoverRequest, *, ahead: Collection[routing.Need] = ()
    ) -> HandoverResult | None:
        """Put the live callee into a free nailed agent's bridge; None when no nailed agent is free
        (the caller rings one as before). Returns when the conversation is over."""
        t0 = self._clock()
        nailed, reserved_at = await self._reserve(request, ahead)
        if nailed is None:
            return None
        cid = request.channel_id
        nailed.callee = cid
        gone = asyncio.Event()
        self._bridged[cid] = gone
        result = HandoverResult(outcome="error", agent=nailed.agent, agents_tried=[nailed.agent])
        owned = cid not in self.deps.dispatcher
        events = self.deps.dispatcher.subscribe(cid)  # the dialer's call's own queue when it has one
        watch: asyncio.Task[None] | None = None
        recording: asyncio.Task[SnoopRecording | None] | None = None
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
            recording = asyncio.create_task(self._record(nailed, request), name=f"nailed-rec-{cid}")
            await self._announce(nailed, request)
            if request.on_agent is not None:
                try:
                    await request.on_agent(nailed.agent)
                except Exception:
                    log.exception("noting agent %s on call %s failed", nailed.agent, cid)
            watch = asyncio.create_task(self._watch_callee(events, cid, gone))
            await gone.wait()
            result.talk_seconds = round(self._clock() - bridged, 3)
            if nailed.ended.is_set():
                result.ended_by = "agent"
                with contextlib.suppress(AriError):
                    await self.ari.hangup(cid)
            else:
                result.ended_by = "customer"
                with contextlib.suppress(AriError):
                    await self.ari.remove_channel(nailed.bridge, cid)
            await self._release(nailed.agent, "wrap_up", "call_ended", reserved_at)
            # An escalated or very long call rests its agent as a rung call does (agents.help).
            deps = self.deps
            call_ref = request.origin.attempt_id or cid
            await rest_after(
                deps.db, deps.settings, deps.now(), deps.publish, call_ref, nailed.agent, result.talk_seconds
            )
            self._bridged.pop(cid, None)
            nailed.callee = None  # free for the next callee once "ready", while the file is made
            await self._publish_end(nailed, request, result)
            # Handed over first: a cancellation from here on leaves the two sides for start-up's
            # recovery (recordings.capture.recover_orphans), never deletes a registered file.
            started, recording = recording, None
            await self._keep_recording(started, result)
            return result
        finally:
            if watch is not None:
                watch.cancel()
            if recording is not None:  # the call failed on the way: keep nothing half made
                await self._drop_recording(recording)
            self._bridged.pop(cid, None)
            if nailed.callee == cid:
                nailed.callee = None
            if owned:
                self.deps.dispatcher.unsubscribe(cid)

    async def _record(self, nailed: NailedLeg, request: HandoverRequest) -> SnoopRecording | None:
        deps = self.deps
        facts = recording_facts(request.origin, nailed.agent)
        rec_deps = RecordingDeps(self.ari, deps.dispatcher, deps.db, deps.settings, now=deps.now)
        return await SnoopRecording.start(rec_deps, request.channel_id, facts)

    async def _keep_recording(
        self, started: asyncio.Task[SnoopRecording | None], result: HandoverResult
    ) -> None:
        """The callee left: stop the recording, merge and register it (the call's result names it)."""
        try:
            recording = await started
        except Exception:
            log.exception("recording of %s's nailed call failed", result.agent)
            return
        if recording is None:
            return
        result.recording_id = await recording.stop()
        if result.recording_id is not None:
            result.recording_path = recording.capture.stored_path()

    async def _drop_recording(self, started: asyncio.Task[SnoopRecording | None]) -> None:
        try:
            recording = await started
        except Exception:
            log.exception("recording of a nailed call failed")
            return
        if recording is not None:
            await recording.discard()

    async def _watch_callee(self, events: ChannelEvents, cid: str, gone: asyncio.Event) -> None:
        while not gone.is_set():
            event = await events.get()
            if event.get("channel", {}).get("id") == cid and event.get("type") in HANGUP_EVENTS:
                gone.set()

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

    async def _publish_end(self, nailed: NailedLeg, request: HandoverRequest, result: HandoverResult) -> None:
        """The callee left: the agent's phone ends the call's pop and starts its wrap-up."""
        if self.deps.publish is None:
            return
        origin = request.origin
        event = CallEvent(
            call_id=origin.attempt_id or request.channel_id,
            campaign=origin.campaign,
            kind="screen_pop_end",
            detail={"agent": nailed.agent, "nailed": True, "ended_by": result.ended_by},
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

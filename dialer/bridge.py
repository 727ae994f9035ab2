"""Connect a live customer channel (in Stasis) to an agent, bridged and recorded in stereo.

    result = await connect_to_agent(ari, dispatcher, channel_id, skill="welfare", db=db,
                                    settings=settings, campaign="elder-w48", contact=contact)

What happens:

1. The customer waits in the skill's queue (first come, first served; higher ``priority``
   first) hearing music on hold, with an optional announcement callback every
   ``announce_every`` seconds (``announce(position)``, e.g. "you are number 2").
2. At the head of the queue the call reserves an agent (agents.routing: available, skilled,
   longest idle, fairness) -- the agent is marked ``on_call`` at once -- and rings them:
   ``PJSIP/<endpoint>`` originated into the dialplan context ``warmline-record`` with
   ``X-Warmline-*`` SIP headers for the softphone's screen pop (campaign, contact name, masked
   phone, script, attempt). An agent who does not answer within ``ring_timeout`` is put on
   ``break`` (reason ``no_answer``) and the next agent is tried.
3. When the agent answers, ``warmline-record`` starts MixMonitor on the agent's leg with
   ``r()``/``t()``: what the agent says and what the agent hears (the customer) in two aligned
   files -- and hands the leg to Stasis; both legs go into a mixing bridge.
4. When either side hangs up the other leg is hung up, the bridge destroyed, the two recordings
   turned into a stereo WAV (left = agent, right = customer) at
   ``recordings_dir/YYYY/MM/DD/<uuid>.wav`` and a ``call_recordings`` row written. The agent goes
   to ``wrap_up`` unless their softphone has reported a newer state itself.
5. No agent within ``timeout`` seconds: the call is ``abandoned`` (left up, in Stasis, for the
   caller of this function to end or to offer a callback).

Which side lands where was measured in the lab (tests/integration/test_bridge_lab.py: the agent
sends a 700 Hz tone, the customer speaks): MixMonitor's ``r()`` on the agent's channel is what the
agent says, ``t()`` what the agent hears. Its ``D`` (interleaved stereo) output came out garbled
on Asterisk 22 (20 ms frames repeated), so the two files are merged here instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import select

from agents import routing
from core.ari import RECONNECTED, AriClient, AriError
from core.db import Database, utcnow
from core.settings import Settings, get_settings
from core.ari_events import HANGUP_EVENTS, ChannelEvents, EventDispatcher
from recordings.service import register_recording

log = logging.getLogger(__name__)

JSON = dict[str, Any]
RECORD_CONTEXT = "warmline-record"
AGENT_LEG_ARG = "agent-leg"
SAMPLE_RATE = 8000
Announce = Callable[[int], Awaitable[None]]

Outcome = Literal["connected", "abandoned", "caller_hangup", "error"]


@dataclass
class BridgeResult:
    """How the hand-over to an agent ended."""

    outcome: Outcome
    agent: str | None = None
    answered: bool = False
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    ended_by: Literal["agent", "customer", "system"] | None = None
    customer_cause: int | None = None
    recording_id: str | None = None
    recording_path: Path | None = None  # absolute path of the stereo WAV
    agents_tried: list[str] = field(default_factory=list)
    error: str | None = None

    def __str__(self) -> str:
        if self.outcome == "connected":
            return f"connected to {self.agent} for {self.talk_seconds:.0f} s, ended by {self.ended_by}"
        return self.outcome


# ---------------------------------------------------------------- the queue


@dataclass(order=True)
class _Waiting:
    priority: int  # negated, so higher priority sorts first
    seq: int
    channel_id: str = field(compare=False)


class SkillQueues:
    """The calls waiting for an agent in this process, per skill, in the order they are served."""

    def __init__(self) -> None:
        self._queues: dict[str, list[_Waiting]] = {}
        self._seq = itertools.count()

    def join(self, skill: str | None, channel_id: str, priority: int = 0) -> None:
        queue = self._queues.setdefault(skill or "", [])
        queue.append(_Waiting(-priority, next(self._seq), channel_id))
        queue.sort()

    def leave(self, skill: str | None, channel_id: str) -> None:
        queue = self._queues.get(skill or "", [])
        queue[:] = [w for w in queue if w.channel_id != channel_id]

    def position(self, skill: str | None, channel_id: str) -> int:
        """1 for the call at the head of its queue; 0 when not queued."""
        for i, waiting in enumerate(self._queues.get(skill or "", [])):
            if waiting.channel_id == channel_id:
                return i + 1
        return 0

    def waiting(self, skill: str | None = None) -> int:
        if skill is None:
            return sum(len(q) for q in self._queues.values())
        return len(self._queues.get(skill, []))


QUEUES = SkillQueues()
_RESERVE_LOCK = asyncio.Lock()
_DATABASES: dict[str, Database] = {}


def _database(settings: Settings) -> Database:
    db = _DATABASES.get(settings.db_url)
    if db is None:
        db = _DATABASES[settings.db_url] = Database(settings.db_url)
    return db


# ---------------------------------------------------------------- helpers


@dataclass(frozen=True)
class RecordingFiles:
    """Where one bridged call's recording goes. ``base`` (relative to the recordings folder, no
    extension) is what MixMonitor is given; it writes ``base.wav`` (mixed), ``base-agent.wav``
    and ``base-customer.wav``; :func:`merge_stereo` leaves only ``base.wav``, in stereo."""

    base: str
    agent: Path
    customer: Path
    wav: Path


def recording_files(recordings_dir: Path, rec_id: str, when: datetime) -> RecordingFiles:
    base = f"{when:%Y/%m/%d}/{rec_id}"
    return RecordingFiles(
        base=base,
        agent=recordings_dir / f"{base}-agent.wav",
        customer=recordings_dir / f"{base}-customer.wav",
        wav=recordings_dir / f"{base}.wav",
    )


def header_value(text: str) -> str:
    """SIP header values are ASCII: UTF-8 percent-encoded (the softphone decodes them)."""
    return quote(text, safe=" -_.:@*")


def screen_pop_headers(
    *,
    campaign: str | None,
    contact_name: str | None,
    phone_masked: str | None,
    script: str | None,
    attempt: str | None,
    skill: str | None,
    fields: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """Originate variables that add the X-Warmline-* headers the softphone's screen pop reads."""
    values: dict[str, str | None] = {
        "Campaign": campaign,
        "Phone": phone_masked,
        "Script": script,
        "Attempt": attempt,
        "Skill": skill,
        "Field-Name": contact_name,
    }
    for key, value in (fields or {}).items():
        safe = "".join(ch for ch in str(key) if ch.isascii() and (ch.isalnum() or ch == "-"))
        if safe and safe.lower() not in {"name", "phone"} and value not in (None, ""):
            values.setdefault(f"Field-{safe}", str(value))
    return {
        f"PJSIP_HEADER(add,X-Warmline-{name})": header_value(value) for name, value in values.items() if value
    }


def merge_stereo(agent: Path, customer: Path, out: Path) -> float:
    """Two aligned mono recordings into one stereo WAV: left = agent, right = customer.
    Returns the duration in seconds. The mono files are removed."""
    import numpy as np
    import soundfile as sf

    left, rate = sf.read(agent, dtype="int16", always_2d=False)
    right, rate_r = sf.read(customer, dtype="int16", always_2d=False) if customer.exists() else (None, rate)
    if right is None:
        right = np.zeros_like(left)
    if rate_r != rate:
        raise ValueError(f"{agent.name} is {rate} Hz but {customer.name} is {rate_r} Hz")
    frames = max(left.shape[0], right.shape[0])
    stereo = np.zeros((frames, 2), dtype=np.int16)
    stereo[: left.shape[0], 0] = left
    stereo[: right.shape[0], 1] = right
    tmp = out.with_name(out.stem + ".tmp.wav")
    sf.write(tmp, stereo, rate, subtype="PCM_16", format="WAV")
    tmp.replace(out)
    agent.unlink(missing_ok=True)
    customer.unlink(missing_ok=True)
    return float(frames) / float(rate)


async def _file_settled(path: Path, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
    """Wait until MixMonitor has stopped writing (size unchanged for 0.4 s)."""

    def size() -> int:
        return path.stat().st_size if path.exists() else -1

    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = size()
        if now >= 0 and now == last:
            return True
        last = now
        await asyncio.sleep(0.4)
    return size() >= 0


def _is_hangup(event: JSON, channel_id: str) -> bool:
    return event.get("type") in HANGUP_EVENTS and event.get("channel", {}).get("id") == channel_id


def _cause(event: JSON) -> int | None:
    cause = event.get("cause")
    return int(cause) if isinstance(cause, int) else None


# ---------------------------------------------------------------- the hand-over


class _Connect:
    def __init__(
        self,
        ari: AriClient,
        dispatcher: EventDispatcher | None,
        events: ChannelEvents,
        channel_id: str,
        *,
        skill: str | None,
        db: Database,
        settings: Settings,
        campaign: str | None,
        campaign_id: int | None,
        contact_id: int | None,
        attempt_id: str | None,
        headers: dict[str, str],
        timeout: float,
        ring_timeout: int,
        priority: int,
        announce: Announce | None,
        announce_every: float,
        queues: SkillQueues,
        moh: str | None,
    ) -> None:
        self.ari = ari
        self.dispatcher = dispatcher
        self.events = events
        self.cid = channel_id
        self.skill = skill or None
        self.db = db
        self.settings = settings
        self.campaign = campaign
        self.campaign_id = campaign_id
        self.contact_id = contact_id
        self.attempt_id = attempt_id
        self.headers = headers
        self.timeout = timeout
        self.ring_timeout = ring_timeout
        self.priority = priority
        self.announce = announce
        self.announce_every = announce_every
        self.queues = queues
        self.moh = moh
        self.result = BridgeResult(outcome="error")
        self.customer_gone = False
        self._moh_on = False
        self._t0 = time.monotonic()
        self.leg = ""
        self.rec_id = ""
        self.rec_started = utcnow()
        self.files = recording_files(Path(), "", self.rec_started)

    # ---------------------------------------------------- events

    def _track(self, other_id: str) -> None:
        if self.dispatcher is not None and self.cid in self.dispatcher:
            self.dispatcher.alias(self.cid, other_id)
        else:
            self.events.ids.add(other_id)

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

    async def _alive(self, channel_id: str) -> bool:
        try:
            await self.ari.get_channel(channel_id)
        except AriError as exc:
            return exc.status != 404
        return True

    # ---------------------------------------------------- music on hold

    async def _hold(self, on: bool) -> None:
        if self.moh is None or on == self._moh_on or self.customer_gone:
            return
        path = "/" + "/".join(quote(p, safe="") for p in ("channels", self.cid, "moh"))
        try:
            if on:
                await self.ari.request("POST", path, mohClass=self.moh)
            else:
                await self.ari.request("DELETE", path)
            self._moh_on = on
        except AriError as exc:
            log.info("music on hold %s for %s: %s", "on" if on else "off", self.cid, exc)

    # ---------------------------------------------------- the run

    async def run(self) -> BridgeResult:
        self.queues.join(self.skill, self.cid, self.priority)
        try:
            await self._hold(True)
            await self._queue_and_ring()
        except Exception as exc:
            log.exception("agent routing for %s failed", self.cid)
            self.result.outcome = "error"
            self.result.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.queues.leave(self.skill, self.cid)
            if not self.result.answered:
                self.result.wait_seconds = round(time.monotonic() - self._t0, 3)
            if self.result.outcome != "connected":
                await self._hold(False)
        return self.result

    async def _queue_and_ring(self) -> None:
        deadline = self._t0 + self.timeout
        next_announce = self._t0 + self.announce_every
        exclude: set[str] = set()
        while True:
            if self.customer_gone or not await self._alive(self.cid):
                self.customer_gone = True
                self.result.outcome = "caller_hangup"
                self.result.ended_by = "customer"
                return
            now = time.monotonic()
            if now >= deadline:
                self.result.outcome = "abandoned"
                self.result.ended_by = "system"
                return
            position = self.queues.position(self.skill, self.cid)
            if position == 1:
                agent, reserved_at = await self._reserve(exclude)
                if agent is not None:
                    self.result.agents_tried.append(agent.agent)
                    answered = await self._ring(agent, reserved_at)
                    if answered is not None:
                        self.queues.leave(self.skill, self.cid)  # the next caller moves up now
                        await self._talk(agent, answered, reserved_at)
                        return
                    exclude.add(agent.agent)
                    continue
            if self.announce is not None and now >= next_announce and position > 0:
                next_announce = now + self.announce_every
                await self._hold(False)
                try:
                    await self.announce(position)
                finally:
                    await self._hold(True)
            await self._next(max(0.05, min(1.0, deadline - time.monotonic())))

    async def _reserve(self, exclude: set[str]) -> tuple[routing.AgentCandidate | None, datetime]:
        async with _RESERVE_LOCK:
            now = utcnow()

            def pick() -> routing.AgentCandidate | None:
                with self.db.session() as session:
                    return routing.reserve_agent(
                        session, self.skill, exclude=exclude, now=now, tz=self.settings.timezone
                    )

            return await asyncio.to_thread(pick), now

    async def _release(self, agent: str, state: str, reason: str, reserved_at: datetime) -> None:
        def write() -> None:
            with self.db.session() as session:
                routing.release_agent(session, agent, state, reason, reserved_at=reserved_at)

        await asyncio.to_thread(write)

    async def _ring(self, agent: routing.AgentCandidate, reserved_at: datetime) -> JSON | None:
        """Ring the agent; the answered leg's StasisStart, or None (after releasing the agent)."""
        leg = f"agent-{uuid.uuid4()}"
        self.rec_id = str(uuid.uuid4())
        self.rec_started = utcnow()
        self.files = recording_files(self.settings.recordings_dir.resolve(), self.rec_id, self.rec_started)
        self._track(leg)
        variables = {"WARMLINE_REC_FILE": self.files.base, **self.headers}
        try:
            await self.ari.originate(
                f"PJSIP/{agent.endpoint}",
                channel_id=leg,
                context=RECORD_CONTEXT,
                extension="s",
                priority=1,
                variables=variables,
                timeout=self.ring_timeout,
                caller_id=f'"{self.campaign or "warmline"}" <warmline>',
            )
        except AriError as exc:
            log.warning("ringing agent %s failed: %s", agent.agent, exc)
            await self._release(agent.agent, "break", "no_answer", reserved_at)
            return None
        with contextlib.suppress(AriError):
            await self.ari.request(
                "POST",
                f"/applications/{quote(self.ari.app, safe='')}/subscription",
                eventSource=f"channel:{leg}",
            )
        deadline = time.monotonic() + self.ring_timeout + 5
        last_check = time.monotonic()
        while True:
            remaining = deadline - time.monotonic()
            event = await self._next(min(remaining, 1.0))
            if self.customer_gone:
                with contextlib.suppress(AriError):
                    await self.ari.hangup(leg)
                await self._release(agent.agent, "available", "caller_gone", reserved_at)
                await self._discard_recording()
                return None
            if event is not None:
                kind = event.get("type")
                chan = event.get("channel", {}).get("id")
                if kind == "StasisStart" and chan == leg:
                    self.leg = leg
                    return event
                if chan == leg and kind in ("ChannelDestroyed", "ChannelHangupRequest"):
                    log.info("agent %s did not answer (cause %s)", agent.agent, event.get("cause"))
                    await self._release(agent.agent, "break", "no_answer", reserved_at)
                    return None
            if time.monotonic() - last_check > 2:
                last_check = time.monotonic()
                if not await self._alive(leg):  # gone before our subscription took effect
                    await self._release(agent.agent, "break", "no_answer", reserved_at)
                    return None
            if time.monotonic() >= deadline:
                with contextlib.suppress(AriError):
                    await self.ari.hangup(leg)
                await self._release(agent.agent, "break", "no_answer", reserved_at)
                return None

    async def _talk(self, agent: routing.AgentCandidate, answered: JSON, reserved_at: datetime) -> None:
        leg = self.leg
        self.result.agent = agent.agent
        self.result.answered = True
        self.result.wait_seconds = round(time.monotonic() - self._t0, 3)
        bridge_id = f"bridge-{uuid.uuid4()}"
        self._track(bridge_id)
        ended_by: Literal["agent", "customer", "system"] = "system"
        talk_started = time.monotonic()
        try:
            await self.ari.create_bridge("mixing", bridge_id=bridge_id, name=f"agent-{agent.agent}")
            await self._hold(False)
            await self.ari.add_channel(bridge_id, [self.cid, leg])
            self.result.outcome = "connected"
            talk_started = time.monotonic()
            while True:
                event = await self._next(5.0)
                if self.customer_gone:
                    ended_by = "customer"
                    break
                if event is None or event.get("type") == RECONNECTED:
                    if not await self._alive(self.cid):
                        ended_by = "customer"
                        break
                    if not await self._alive(leg):
                        ended_by = "agent"
                        break
                    continue
                if _is_hangup(event, leg):
                    ended_by = "agent"
                    break
        finally:
            self.result.talk_seconds = round(time.monotonic() - talk_started, 3)
            self.result.ended_by = ended_by
            for channel in (leg, self.cid):
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel)
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(bridge_id)
            await self._release(agent.agent, "wrap_up", "call_ended", reserved_at)
            await self._finish_recording(agent.agent)

    async def _discard_recording(self) -> None:
        """The agent answered just as the customer left: nothing was said, keep no files."""
        await asyncio.sleep(0.5)
        for path in (self.files.agent, self.files.customer, self.files.wav):
            await asyncio.to_thread(path.unlink, True)

    async def _finish_recording(self, agent: str) -> None:
        if not await _file_settled(self.files.agent):
            log.warning("recording %s did not appear (MixMonitor)", self.rec_id)
            return
        await _file_settled(self.files.wav)
        wav = self.files.wav
        await asyncio.to_thread(merge_stereo, self.files.agent, self.files.customer, wav)
        self.result.recording_id = self.rec_id
        self.result.recording_path = wav
        ended = utcnow()

        def write() -> None:
            # Registered at once: checksum, size, duration and the acoustic analytics for QA.
            with self.db.session() as session:
                register_recording(
                    session,
                    self.settings,
                    wav,
                    campaign_id=self.campaign_id,
                    contact_id=self.contact_id,
                    attempt_id=self.attempt_id,
                    agent=agent,
                    started_at=self.rec_started,
                    ended_at=ended,
                    source="agent-bridge",
                )

        await asyncio.to_thread(write)
        for hook in list(RECORDING_HOOKS):
            try:
                await hook(self.rec_id, wav)
            except Exception:
                log.exception("recording hook %s failed for %s", hook, self.rec_id)


def finish_orphans(settings: Settings, db: Database, *, older_than: float = 120.0) -> list[str]:
    """Merge and register recordings a crash left as ``<uuid>-agent.wav`` / ``-customer.wav``
    pairs (the bridge died before the call ended): run at start-up. Returns their ids."""

    root = settings.recordings_dir.resolve()
    if not root.is_dir():
        return []
    done: list[str] = []
    cutoff = time.time() - older_than
    for agent_file in sorted(root.glob("*/*/*/*-agent.wav")):
        rec_id = agent_file.name.removesuffix("-agent.wav")
        try:
            uuid.UUID(rec_id)
        except ValueError:
            continue
        if agent_file.stat().st_mtime > cutoff:
            continue  # maybe still being written
        wav = agent_file.with_name(f"{rec_id}.wav")
        customer = agent_file.with_name(f"{rec_id}-customer.wav")
        # When MixMonitor last wrote is when the call ended; the merged file is dated now.
        ended = datetime.fromtimestamp(agent_file.stat().st_mtime, tz=UTC)
        try:
            seconds = merge_stereo(agent_file, customer, wav)
        except Exception:
            log.exception("orphaned recording %s could not be merged", rec_id)
            continue
        with db.session() as session:
            register_recording(
                session,
                settings,
                wav,
                campaign_id=None,
                contact_id=None,
                agent=None,
                started_at=ended - timedelta(seconds=seconds),
                ended_at=ended,
                source="agent-bridge",
            )
        log.warning("recovered recording %s (%.0f s) left by an interrupted bridge", rec_id, seconds)
        done.append(rec_id)
    return done


RecordingHook = Callable[[str, Path], Awaitable[None]]
RECORDING_HOOKS: list[RecordingHook] = []
"""Called as ``hook(recording_id, wav_path)`` after the ``call_recordings`` row is written (the
registry registers checksum and analytics from here)."""


def _lookup(
    db: Database, campaign: object, contact: object, attempt_id: str | None
) -> tuple[str | None, int | None, int | None, str | None, str | None, dict[str, Any]]:
    """(campaign name, campaign id, contact id, contact name, masked phone, fields) from whatever
    the caller gave: ORM rows, a campaign name, or just the attempt id."""
    from dialer.lists.phones import mask
    from dialer.models import Attempt, Campaign, Contact

    name = (
        getattr(campaign, "name", None)
        if campaign is not None and not isinstance(campaign, str)
        else campaign
    )
    campaign_id = getattr(campaign, "id", None) if not isinstance(campaign, str) else None
    contact_row = contact if isinstance(contact, Contact) else None
    with db.session() as session:
        if campaign_id is None and isinstance(name, str):
            campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == name))
        if contact_row is None and attempt_id is not None:
            attempt = session.get(Attempt, attempt_id)
            if attempt is not None:
                contact_row = session.get(Contact, attempt.contact_id)
                campaign_id = campaign_id or attempt.campaign_id
        if contact_row is None:
            return (name, campaign_id, None, None, None, {})
        return (
            name,
            campaign_id or contact_row.campaign_id,
            contact_row.id,
            contact_row.name,
            mask(contact_row.phone_e164),
            dict(contact_row.fields or {}),
        )


async def connect_to_agent(
    ari: AriClient,
    events: EventDispatcher | ChannelEvents | None = None,
    customer_channel_id: str | None = None,
    *,
    skill: str | None,
    db: Database | None = None,
    settings: Settings | None = None,
    campaign: object = None,
    contact: object = None,
    timeout: float = 120.0,  # noqa: ASYNC109 - seconds the customer may wait for an agent
    ring_timeout: int = 20,
    priority: int = 0,
    script: str | None = None,
    attempt_id: str | None = None,
    announce: Announce | None = None,
    announce_every: float = 30.0,
    moh: str | None = "default",
    queues: SkillQueues | None = None,
    dispatcher: EventDispatcher | None = None,
    channel_id: str | None = None,
    contact_fields: Mapping[str, object] | None = None,
    transfer: Any = None,
) -> BridgeResult:
    """Queue the customer for ``skill``, ring agents in routing order, bridge and record the call.

    ``events`` is the app's EventDispatcher (or the customer's own ChannelEvents queue, with
    ``dispatcher`` given separately); the customer's channel must be in Stasis and answered.
    ``campaign`` is a Campaign row or name, ``contact`` a Contact row; ``attempt_id`` defaults to
    the channel id (the dialer's attempt id), from which campaign and contact are looked up when
    not given. Returns when the conversation is over (``connected``), when no agent answered in
    ``timeout`` seconds (``abandoned``: the customer's channel is left up for the caller to end)
    or when the customer hung up while waiting (``caller_hangup``).
    """
    customer = customer_channel_id or channel_id
    if customer is None:
        raise ValueError("connect_to_agent needs the customer's channel id")
    if isinstance(events, EventDispatcher):
        dispatcher = dispatcher or events
        queue = events.subscribe(customer)
    elif isinstance(events, ChannelEvents):
        queue = events
    elif dispatcher is not None:
        queue = dispatcher.subscribe(customer)
    else:
        raise ValueError("connect_to_agent needs the EventDispatcher or the call's ChannelEvents")
    settings = settings or get_settings()
    db = db or _database(settings)
    if transfer is not None:
        skill = skill or getattr(transfer, "skill", None)
        priority = max(priority, int(getattr(transfer, "priority", 0) or 0))
    attempt_id = attempt_id or (customer if campaign is not None else None)
    name, campaign_id, contact_id, contact_name, masked, fields = await asyncio.to_thread(
        _lookup, db, campaign, contact, attempt_id
    )
    if contact_fields:
        fields = {**fields, **{k: v for k, v in contact_fields.items() if k != "phone"}}
        contact_name = contact_name or (str(contact_fields["name"]) if contact_fields.get("name") else None)
    headers = screen_pop_headers(
        campaign=name,
        contact_name=contact_name,
        phone_masked=masked,
        script=script,
        attempt=attempt_id or customer,
        skill=skill,
        fields=fields,
    )
    run = _Connect(
        ari,
        dispatcher,
        queue,
        customer,
        skill=skill,
        db=db,
        settings=settings,
        campaign=name,
        campaign_id=campaign_id,
        contact_id=contact_id,
        attempt_id=attempt_id,
        headers=headers,
        timeout=timeout,
        ring_timeout=ring_timeout,
        priority=priority,
        announce=announce,
        announce_every=announce_every,
        queues=queues or QUEUES,
        moh=moh,
    )
    return await run.run()

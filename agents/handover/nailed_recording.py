"""The stereo recording of a nailed call: MixMonitor on the callee's channel (over AMI), else two snoops.

    recording = await start_recording(RecordingDeps(ari, dispatcher, db, settings, ami=ami), callee, facts)
    ...  # the callee talks with the nailed agent
    rec_id = await recording.stop(entered=..., left=..., began=...)  # merged to stereo, registered

A rung agent's leg is recorded by MixMonitor in ``warmline-record`` (``r()`` the agent, ``t()`` the
far end), whose two files Asterisk keeps in step: a direction that sends nothing for a while is
written as silence (the audiohook's silence substitution), and both files lose the same frames when
the audiohook flushes to stay in sync. A nailed call makes no new leg and the dialplan cannot reach
a channel in Stasis, but the manager interface can: :class:`MixMonitorRecording` sends AMI's
``MixMonitor`` action (core.ami) for the callee's channel as the callee joins the agent's bridge,
with ``r(<base>-customer.wav)t(<base>-agent.wav)``: what the callee's channel receives is the callee,
what it is sent is the agent (the bridge), so the agent is again ``-agent`` (left) and the callee
``-customer`` (right), and the beep played on the agent's leg is in neither (the callee never heard
it). ``i(WARMLINE_MIXMON)`` makes Asterisk name the MixMonitor's id in that channel variable just as
it attaches, which ARI reports (``ChannelVarset``) with Asterisk's timestamp: where the files begin
in the callee's bridged span (with ChannelVarset filtered out, core.ari_events.UNUSED_EVENTS, the
time from the bridge's answer to MixMonitor's reply on our clock stands in). ``StopMixMonitor``
ends it when the callee leaves the agent (a transfer) or at the end; a callee who hung up took it
with them. The files are merged and registered by :class:`recordings.capture.StereoCapture`, as a
rung call's are (left the agent, right the callee; the same facts; sampling, QA and encryption at
rest unchanged).

When the node has no AMI (``ami_port`` unset) or the action fails (AMI down, login refused,
Asterisk says no), the call is recorded as before by :class:`SnoopRecording` (logged; the attempt's
detail says ``recording_via: snoop``): two snoop channels on the callee, ``spy=out`` hears what the
callee hears (the agent), ``spy=in`` what the callee says, each recorded by ARI (``record``) under
the names MixMonitor would have written -- ARI's recording folder and the monitor folder are both
the recordings folder. The two snoops start tens to hundreds of ms apart, so the merge places each
side where its ``RecordingStarted`` event says it began, within the callee's bridged span. A snoop
passes only the frames that come, and its audiohook flushes both directions when one runs more than
100 ms ahead (Asterisk's ``AST_AUDIOHOOK_TRIGGER_SYNC``): a loaded machine's snoop loses stretches
that cannot be placed afterwards (measured 0.1-1.3 s off at load 9, docs/pacing.md), which is why
MixMonitor is used when it can be.

The snoops end with the callee's channel; :meth:`SnoopRecording.stop` hangs them up anyway (the
callee may only have left the bridge) and takes both files once they stop growing, as the rung
call's MixMonitor files are taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

from agents.handover.call import CallOrigin
from core.ami import AmiClient, AmiError
from core.ari import AriClient, AriError
from core.ari_events import ChannelEvents, EventDispatcher, event_time
from core.db import Database, utcnow
from core.settings import Settings
from recordings.capture import RecordingFacts, SideTiming, StereoCapture

log = logging.getLogger(__name__)

SNOOP_ARG = "nailed-rec"  # the snoops' Stasis argument: subscribed before they exist, never routed
# side of the stereo file -> what the snoop on the callee hears: "out" is what the callee hears
# (the agent), "in" what the callee says.
SIDES = {"agent": "out", "customer": "in"}
IN_APP_WITHIN = 5.0  # seconds a snoop may take to enter the app (a loaded machine)
# The channel variable MixMonitor's i() option sets to its id as it attaches (ChannelVarset: when).
MIXMON_VAR = "WARMLINE_MIXMON"


def recording_facts(origin: CallOrigin, agent: str) -> RecordingFacts:
    """What a call's recording row says: the same for a rung and a nailed call."""
    return RecordingFacts(
        agent=agent,
        campaign=origin.campaign,
        campaign_id=origin.campaign_id,
        elder_welfare=origin.elder_welfare,
        contact_id=origin.contact_id,
        attempt_id=origin.attempt_id,
    )


@dataclass
class RecordingDeps:
    ari: AriClient
    dispatcher: EventDispatcher
    db: Database
    settings: Settings
    now: Callable[[], datetime] = utcnow
    ami: AmiClient | None = None  # the node's manager interface; None: snoops


class NailedRecording(Protocol):
    """One nailed call's recording, however it is made."""

    via: ClassVar[str]  # "mixmonitor" or "snoop": the attempt's detail says which
    after_bridge_s: float | None  # seconds from the bridge to its start, on our clock

    @property
    def capture(self) -> StereoCapture: ...

    async def stop(
        self,
        *,
        entered: datetime | None = None,
        left: datetime | None = None,
        began: datetime | None = None,
    ) -> str | None: ...

    async def discard(self) -> None: ...


async def start_recording(deps: RecordingDeps, callee: str, facts: RecordingFacts) -> NailedRecording | None:
    """MixMonitor on the callee over AMI when the node has AMI and it works, else the snoops; None
    when neither could start (logged: the call goes on unrecorded)."""
    if deps.ami is not None:
        mixed = await MixMonitorRecording.start(deps, deps.ami, callee, facts)
        if mixed is not None:
            return mixed
        log.warning("recording the nailed call of %s by snoops instead (AMI MixMonitor failed)", facts.agent)
    return await SnoopRecording.start(deps, callee, facts)


async def finish_capture(
    deps: RecordingDeps, capture: StereoCapture, facts: RecordingFacts, timing: SideTiming | None
) -> str | None:
    """Merge a nailed call's two files to stereo and register them (MixMonitor's or the snoops'
    alike); the recording's id, or None when that failed (logged: the call is over either way)."""
    try:
        return await capture.finish(
            deps.db, deps.settings, facts, ended_at=deps.now(), mixed=False, timing=timing
        )
    except Exception:
        log.exception("recording %s of %s's nailed call could not be finished", capture.rec_id, facts.agent)
        return None


@dataclass
class MixMonitorRecording:
    """One nailed call's recording by MixMonitor on the callee's channel, started over AMI."""

    via: ClassVar[str] = "mixmonitor"
    deps: RecordingDeps
    ami: AmiClient
    capture: StereoCapture
    facts: RecordingFacts
    channel: str  # as AMI knows it: the callee's id (or name)
    monitor_id: str  # MixMonitorID: StopMixMonitor stops this one only
    after_bridge_s: float | None = None  # bridge answered to MixMonitor's reply, on our clock

    @classmethod
    async def start(
        cls, deps: RecordingDeps, ami: AmiClient, callee: str, facts: RecordingFacts
    ) -> MixMonitorRecording | None:
        """MixMonitor on ``callee`` writing ``<base>-agent.wav`` (what the callee is sent) and
        ``<base>-customer.wav`` (what they say); None when AMI or Asterisk refused (logged)."""
        capture = StereoCapture.plan(deps.settings.recordings_dir, now=deps.now())
        base = capture.base
        options = f"r({base}-customer.wav)t({base}-agent.wav)i({MIXMON_VAR})"
        try:
            await capture.begin(facts)
            reply, channel = await _mixmonitor(deps.ari, ami, callee, options)
        except (AmiError, AriError, OSError) as exc:
            log.warning("MixMonitor for the nailed call of %s (%s) failed: %s", facts.agent, callee, exc)
            with contextlib.suppress(AmiError):  # no reply is not "not started"
                await ami.action("StopMixMonitor", Channel=callee)
            await capture.discard()
            return None
        return cls(deps, ami, capture, facts, channel, reply.get("MixMonitorID", ""))

    def timing(
        self, entered: datetime | None, left: datetime | None, began: datetime | None
    ) -> SideTiming | None:
        """Both files begin together, where the MixMonitor began (``began``, its ChannelVarset) in
        the callee's bridged span. Without that event (an Asterisk asked not to send ChannelVarset:
        core.ari_events.UNUSED_EVENTS) the time from the bridge's answer to MixMonitor's reply on
        our clock stands in (a few ms late: the reply's way back); neither known: at 0 (the merge
        then puts them to end with the span)."""
        if entered is None:
            return None
        if began is not None:
            start = (began - entered).total_seconds()
        else:
            start = self.after_bridge_s if self.after_bridge_s is not None else 0.0
        span = (left - entered).total_seconds() if left is not None and left > entered else None
        return SideTiming(agent_start_s=start, customer_start_s=start, span_s=span)

    async def stop(
        self,
        *,
        entered: datetime | None = None,
        left: datetime | None = None,
        began: datetime | None = None,
    ) -> str | None:
        """Stop the MixMonitor (gone already when the callee hung up), merge its two files to
        stereo and register them; the recording's id (None when nothing was written, logged)."""
        await self._stop_monitor()
        return await finish_capture(self.deps, self.capture, self.facts, self.timing(entered, left, began))

    async def discard(self) -> None:
        """The call never started: no files, no row."""
        await self._stop_monitor()
        await self.capture.discard()

    async def _stop_monitor(self) -> None:
        fields = {"Channel": self.channel}
        if self.monitor_id:
            fields["MixMonitorID"] = self.monitor_id
        try:
            await self.ami.action("StopMixMonitor", **fields)
        except AmiError as exc:  # the callee hung up: their MixMonitor went with them
            log.debug("StopMixMonitor %s: %s", self.channel, exc)


@dataclass
class SnoopRecording:
    """One nailed call's recording: its capture, its facts and its two snoops (side -> channel)."""

    via: ClassVar[str] = "snoop"
    deps: RecordingDeps
    capture: StereoCapture
    facts: RecordingFacts
    snoops: dict[str, str]
    events: dict[str, ChannelEvents]
    started: dict[str, datetime | None] = field(default_factory=dict)  # side -> RecordingStarted
    after_bridge_s: float | None = None  # unused: each snoop's RecordingStarted places it

    @classmethod
    async def start(cls, deps: RecordingDeps, callee: str, facts: RecordingFacts) -> SnoopRecording | None:
        """Snoop on the callee and record both directions; None when Asterisk refused (logged:
        the call goes on unrecorded, as a rung call whose MixMonitor failed would)."""
        capture = StereoCapture.plan(deps.settings.recordings_dir, now=deps.now())
        snoops = {side: f"nailed-rec-{capture.rec_id}-{side}" for side in SIDES}
        events = {side: deps.dispatcher.subscribe(snoop) for side, snoop in snoops.items()}
        recording = cls(deps, capture, facts, snoops, events)
        try:
            await capture.begin(facts)
            for side, spy in SIDES.items():
                await deps.ari.snoop(callee, spy=spy, snoop_id=snoops[side], app_args=SNOOP_ARG)
            # ARI answers the snoop before it is in the app, and refuses to record it until it is.
            for side in SIDES:
                if await events[side].wait_for(_stasis_start(snoops[side]), IN_APP_WITHIN) is None:
                    raise AriError(504, "POST", "snoop", f"snoop {snoops[side]} never entered the app")
            await asyncio.gather(
                *(
                    deps.ari.record_channel(snoops[side], f"{capture.base}-{side}", if_exists="overwrite")
                    for side in SIDES
                )
            )
            # When each file's first frame was written, on Asterisk's clock: the merge places the
            # sides by it (the two snoops and recordings start tens to hundreds of ms apart).
            for side in SIDES:
                begun = await events[side].wait_for(_recording_started, IN_APP_WITHIN)
                recording.started[side] = event_time(begun)
        except (AriError, OSError) as exc:
            log.warning("recording the nailed call of %s (%s) failed: %s", facts.agent, callee, exc)
            await recording._hang_up()
            await capture.discard()  # a side that had started closes its file as its snoop goes
            return None
        return recording

    def timing(self, entered: datetime | None, left: datetime | None) -> SideTiming | None:
        """Where the two files sit in the call: each from its RecordingStarted, within the span
        from the callee entering the agent's bridge to their leaving it (or hanging up). None when
        a start is unknown (the merge then aligns the sides at their ends, as before)."""
        agent, customer = self.started.get("agent"), self.started.get("customer")
        if agent is None or customer is None:
            return None
        origin = entered if entered is not None else min(agent, customer)
        span = (left - origin).total_seconds() if left is not None and left > origin else None
        return SideTiming(
            agent_start_s=(agent - origin).total_seconds(),
            customer_start_s=(customer - origin).total_seconds(),
            span_s=span,
        )

    async def stop(
        self,
        *,
        entered: datetime | None = None,
        left: datetime | None = None,
        began: datetime | None = None,
    ) -> str | None:
        """End both recordings, merge them to stereo and register the file; its id (None when
        nothing was written, logged). The snoops usually went with the callee's channel, and
        with them the recordings' events: the files are taken once they stop growing.
        ``entered``/``left``: the callee's bridged span on Asterisk's clock; the stereo file is
        that span, each side placed where its recording started (``began``, a MixMonitor's
        start, is not theirs: each snoop's RecordingStarted is)."""
        await self._hang_up()
        return await finish_capture(self.deps, self.capture, self.facts, self.timing(entered, left))

    async def discard(self) -> None:
        """The call never started: no files, no row."""
        await self._hang_up()
        await self.capture.discard()  # ARI closes the files as the snoops go

    async def _hang_up(self) -> None:
        for snoop in self.snoops.values():
            self.deps.dispatcher.unsubscribe(snoop)
            with contextlib.suppress(AriError):
                await self.deps.ari.hangup(snoop)


async def _mixmonitor(
    ari: AriClient, ami: AmiClient, callee: str, options: str
) -> tuple[dict[str, str], str]:
    """AMI's MixMonitor for the channel ARI calls ``callee``, and how AMI was told the channel: AMI
    finds a channel by its name or its unique id (ARI's id); should it know only names, the name
    ARI gives is tried once."""
    try:
        return await ami.action("MixMonitor", Channel=callee, Options=options), callee
    except AmiError as exc:
        if "no such channel" not in exc.message.lower():
            raise
        name = str((await ari.get_channel(callee)).get("name") or "")
        if not name or name == callee:
            raise
        return await ami.action("MixMonitor", Channel=name, Options=options), name


def _stasis_start(snoop: str) -> Callable[[dict[str, object]], bool]:
    def entered(event: dict[str, object]) -> bool:
        channel = event.get("channel")
        return event.get("type") == "StasisStart" and isinstance(channel, dict) and channel.get("id") == snoop

    return entered


def _recording_started(event: dict[str, object]) -> bool:
    return event.get("type") == "RecordingStarted"

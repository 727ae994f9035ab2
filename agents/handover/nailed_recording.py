"""The stereo recording of a nailed call: two snoop channels on the callee, recorded by ARI.

    recording = await SnoopRecording.start(RecordingDeps(ari, dispatcher, db, settings), callee, facts)
    ...  # the callee talks with the nailed agent
    rec_id = await recording.stop()    # merged to stereo and registered, as a rung call's

A rung agent's leg is recorded by MixMonitor in ``warmline-record`` (``r()`` the agent, ``t()`` the
far end). A nailed call makes no new leg, and a channel in Stasis cannot run MixMonitor, so when the
callee joins the agent's bridge two snoop channels are put on the callee's channel: ``spy=out``
hears what the callee hears (the agent), ``spy=in`` what the callee says. Each is recorded by ARI
(``record``) under the names MixMonitor would have written, ``<base>-agent`` and ``<base>-customer``
-- ARI's recording folder and the monitor folder are both the recordings folder -- and
:class:`recordings.capture.StereoCapture` merges and registers them exactly as for a rung call (left
the agent, right the callee; the same facts; sampling, QA and encryption at rest unchanged). The two
snoops and their recordings start tens to hundreds of ms apart and after the callee is in the
bridge, so the merge places each side where its ``RecordingStarted`` event says it began, within
the callee's bridged span (``ChannelEnteredBridge`` to their leaving), both on Asterisk's clock:
the stereo file is that span, each side padded or cut to it. A snoop passes only the frames that
come: a side that sends nothing for a while has that stretch missing (MixMonitor fills it with
silence); such a side is put to end with the call, its missing stretch as silence just after its
start (the lab callees' pause is their wait for the agent's greeting, at the start), never before
its recording began (measured in the nailed lab, docs/pacing.md).

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

from agents.handover.call import CallOrigin
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


@dataclass
class SnoopRecording:
    """One nailed call's recording: its capture, its facts and its two snoops (side -> channel)."""

    deps: RecordingDeps
    capture: StereoCapture
    facts: RecordingFacts
    snoops: dict[str, str]
    events: dict[str, ChannelEvents]
    started: dict[str, datetime | None] = field(default_factory=dict)  # side -> RecordingStarted

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

    async def stop(self, *, entered: datetime | None = None, left: datetime | None = None) -> str | None:
        """End both recordings, merge them to stereo and register the file; its id (None when
        nothing was written, logged). The snoops usually went with the callee's channel, and
        with them the recordings' events: the files are taken once they stop growing.
        ``entered``/``left``: the callee's bridged span on Asterisk's clock; the stereo file is
        that span, each side placed where its recording started."""
        await self._hang_up()
        deps = self.deps
        try:
            return await self.capture.finish(
                deps.db,
                deps.settings,
                self.facts,
                ended_at=deps.now(),
                mixed=False,
                timing=self.timing(entered, left),
            )
        except Exception:
            log.exception(
                "recording %s of %s's nailed call could not be finished",
                self.capture.rec_id,
                self.facts.agent,
            )
            return None

    async def discard(self) -> None:
        """The call never started: no files, no row."""
        await self._hang_up()
        await self.capture.discard()  # ARI closes the files as the snoops go

    async def _hang_up(self) -> None:
        for snoop in self.snoops.values():
            self.deps.dispatcher.unsubscribe(snoop)
            with contextlib.suppress(AriError):
                await self.deps.ari.hangup(snoop)


def _stasis_start(snoop: str) -> Callable[[dict[str, object]], bool]:
    def entered(event: dict[str, object]) -> bool:
        channel = event.get("channel")
        return event.get("type") == "StasisStart" and isinstance(channel, dict) and channel.get("id") == snoop

    return entered


def _recording_started(event: dict[str, object]) -> bool:
    return event.get("type") == "RecordingStarted"

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
recordings are started together and end together (with the callee), so the merge aligns them at
their ends. A snoop passes only the frames that come: a side that sends nothing for a while has
that stretch missing, where MixMonitor fills it with silence (measured in the nailed lab,
docs/pacing.md).

The snoops end with the callee's channel; :meth:`SnoopRecording.stop` hangs them up anyway (the
callee may only have left the bridge) and takes both files once they stop growing, as the rung
call's MixMonitor files are taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from agents.handover.call import CallOrigin
from core.ari import AriClient, AriError
from core.ari_events import ChannelEvents, EventDispatcher
from core.db import Database, utcnow
from core.settings import Settings
from recordings.capture import RecordingFacts, StereoCapture

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
        except (AriError, OSError) as exc:
            log.warning("recording the nailed call of %s (%s) failed: %s", facts.agent, callee, exc)
            await recording._hang_up()
            await capture.discard()  # a side that had started closes its file as its snoop goes
            return None
        return recording

    async def stop(self) -> str | None:
        """End both recordings, merge them to stereo and register the file; its id (None when
        nothing was written, logged). The snoops usually went with the callee's channel, and
        with them the recordings' events: the files are taken once they stop growing."""
        await self._hang_up()
        deps = self.deps
        try:
            return await self.capture.finish(
                deps.db, deps.settings, self.facts, ended_at=deps.now(), mixed=False
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

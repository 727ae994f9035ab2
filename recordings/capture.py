"""Stereo capture of a bridged call: the caller hands a call over, gets a registered recording back.

    capture = StereoCapture.plan(settings.recordings_dir, now=utcnow())
    ... originate the agent's leg into ``warmline-record`` with WARMLINE_REC_FILE=capture.base ...
    rec_id = await capture.finish(db, settings, facts, ended_at=utcnow())   # merged + registered
    await capture.discard()                                                 # nothing was said

``warmline-record`` starts MixMonitor on the agent's leg with ``r()``/``t()``: what the agent says
and what the agent hears (the far end) in two aligned files. Which side lands where was measured in
the lab (tests/integration/test_bridge_lab.py: the agent sends a 700 Hz tone, the customer speaks).
MixMonitor's ``D`` (interleaved stereo) output came out garbled on Asterisk 22 (20 ms frames
repeated), so the two files are merged here: left = agent, right = far end, one
``recordings_dir/YYYY/MM/DD/<uuid>.wav`` registered with checksum and analytics.

A crash between the call and the merge leaves a ``-agent.wav``/``-customer.wav`` pair:
:func:`recover_orphans` (run when the service starts) merges and registers those, dated when
MixMonitor last wrote them and filed where they lie.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.db import Database
from core.settings import Settings
from recordings.service import register_recording

log = logging.getLogger(__name__)

SOURCE = "agent-bridge"
PRACTICE_SOURCE = "practice"


@dataclass(frozen=True)
class RecordingFacts:
    """What the recording row says about the call (names and ids, never a phone number)."""

    agent: str | None = None
    campaign: str | None = None
    campaign_id: int | None = None
    elder_welfare: bool = False
    contact_id: int | None = None
    attempt_id: str | None = None
    practice: bool = False  # a practice call (workforce.practice): a scenario, no citizen on it


@dataclass(frozen=True)
class RecordingFiles:
    """Where one bridged call's recording goes. ``base`` (relative to the recordings folder, no
    extension) is what MixMonitor is given; it writes ``base.wav`` (mixed), ``base-agent.wav``
    and ``base-customer.wav``; :func:`merge_stereo` leaves only ``base.wav``, in stereo."""

    base: str
    agent: Path
    customer: Path
    wav: Path
    facts: Path  # the call's facts while it runs, so a recovered recording keeps them


def recording_files(recordings_dir: Path, rec_id: str, when: datetime) -> RecordingFiles:
    base = f"{when.astimezone(UTC):%Y/%m/%d}/{rec_id}"
    return RecordingFiles(
        base=base,
        agent=recordings_dir / f"{base}-agent.wav",
        customer=recordings_dir / f"{base}-customer.wav",
        wav=recordings_dir / f"{base}.wav",
        facts=recordings_dir / f"{base}.facts.json",
    )


@dataclass(frozen=True)
class SideTiming:
    """Where two separately started recordings sit in the call they record: each side's first
    frame in seconds from the start of the call's span (the callee entering the agent's bridge),
    and the span's length (None: as long as the longer side reaches). Measured on Asterisk's
    clock (the ARI events' timestamps), so the server's own delays do not enter. A side never
    starts before its recording did; one shorter than the rest of the span (its channel sent no
    frames for a while) ends with the span, its missing stretch as silence before it."""

    agent_start_s: float
    customer_start_s: float
    span_s: float | None = None


def place_side(samples: Any, start_s: float, frames: int, rate: int) -> Any:
    """``samples`` put at ``start_s`` into ``frames`` frames of silence: padded before and after,
    anything before the span's start or past its end cut off."""
    import numpy as np

    placed = np.zeros(frames, dtype=np.int16)
    offset = round(start_s * rate)
    src = samples[max(0, -offset) :]
    first = max(0, offset)
    count = max(0, min(src.shape[0], frames - first))
    placed[first : first + count] = src[:count]
    return placed


def merge_stereo(
    agent: Path,
    customer: Path,
    out: Path,
    *,
    align_end: bool = False,
    timing: SideTiming | None = None,
) -> float:
    """Two aligned mono recordings into one stereo WAV: left = agent, right = customer.
    Returns the duration in seconds. The mono files are removed. The shorter side is padded with
    silence at its end; with ``align_end``, at its start (two recordings that ended together but
    were started one after the other, when nothing says when each started). With ``timing``
    (a nailed call's snoops) each side is placed at its own start within the call's span, and the
    file is the span: both sides padded or cut to it."""
    import numpy as np
    import soundfile as sf

    left, rate = sf.read(agent, dtype="int16", always_2d=False)
    right, rate_r = sf.read(customer, dtype="int16", always_2d=False) if customer.exists() else (None, rate)
    if right is None:
        right = np.zeros_like(left)
    if rate_r != rate:
        raise ValueError(f"{agent.name} is {rate} Hz but {customer.name} is {rate_r} Hz")
    if timing is not None:
        starts = (timing.agent_start_s, timing.customer_start_s)
        if timing.span_s is not None:
            frames = round(timing.span_s * rate)
        else:
            frames = max(round(st * rate) + n.shape[0] for st, n in zip(starts, (left, right), strict=True))
        stereo = np.zeros((max(frames, 0), 2), dtype=np.int16)
        for side, (samples, start_s) in enumerate(zip((left, right), starts, strict=True)):
            if timing.span_s is not None:
                # Both snoops end with the callee: a side shorter than the time from its start to
                # the span's end lacks stretches its channel sent nothing in; it is put to end
                # with the call (the missing silence before it), as the old merge did.
                start_s = max(start_s, timing.span_s - samples.shape[0] / rate)
            stereo[:, side] = place_side(samples, start_s, stereo.shape[0], rate)
        frames = stereo.shape[0]
    else:
        frames = max(left.shape[0], right.shape[0])
        stereo = np.zeros((frames, 2), dtype=np.int16)
        for side, samples in enumerate((left, right)):
            start = frames - samples.shape[0] if align_end else 0
            stereo[start : start + samples.shape[0], side] = samples
    tmp = out.with_name(out.stem + ".tmp.wav")
    sf.write(tmp, stereo, rate, subtype="PCM_16", format="WAV")
    tmp.replace(out)
    agent.unlink(missing_ok=True)
    customer.unlink(missing_ok=True)
    return float(frames) / float(rate)


async def file_settled(
    path: Path,
    timeout: float = 5.0,  # noqa: ASYNC109
    *,
    quiet: float = 0.4,
) -> bool:
    """Wait until MixMonitor has stopped writing ``path`` (its size unchanged for ``quiet`` s)."""

    def size() -> int:
        return path.stat().st_size if path.exists() else -1

    clock = asyncio.get_running_loop().time
    deadline = clock() + timeout
    last = -1
    while clock() < deadline:
        now = await asyncio.to_thread(size)
        if now >= 0 and now == last:
            return True
        last = now
        await asyncio.sleep(quiet)
    return size() >= 0


@dataclass(frozen=True)
class StereoCapture:
    """One bridged call's recording, from the name MixMonitor is given to the registered row."""

    rec_id: str
    started_at: datetime
    files: RecordingFiles

    @classmethod
    def plan(cls, recordings_dir: Path, *, now: datetime) -> StereoCapture:
        rec_id = str(uuid.uuid4())
        return cls(rec_id, now, recording_files(recordings_dir.resolve(), rec_id, now))

    @property
    def base(self) -> str:
        """The MixMonitor file name (``WARMLINE_REC_FILE``), relative to the recordings folder."""
        return self.files.base

    def stored_path(self) -> Path:
        """The registered stereo file: registered in place, encrypted beside it when that is on."""
        plain = self.files.wav
        sealed = plain.with_name(plain.name + ".enc")
        return sealed if sealed.exists() else plain

    async def begin(self, facts: RecordingFacts) -> None:
        """Note the call's facts beside the recording before it starts (no phone number in them)."""

        def write() -> None:
            self.files.facts.parent.mkdir(parents=True, exist_ok=True)
            self.files.facts.write_text(json.dumps(dataclasses.asdict(facts)), encoding="utf-8")

        await asyncio.to_thread(write)

    async def finish(
        self,
        db: Database,
        settings: Settings,
        facts: RecordingFacts,
        *,
        ended_at: datetime,
        mixed: bool = True,
        timing: SideTiming | None = None,
    ) -> str | None:
        """Merge the two sides and register the stereo file; its id, or None when MixMonitor
        wrote nothing (the leg never reached the recording dialplan). ``mixed``: MixMonitor also
        writes ``base.wav`` (replaced by the merge once it is closed); False for two sides recorded
        another way (a nailed call's snoops: started one after the other, placed by ``timing`` in the
        call's span, or aligned at their ends when their starts are not known)."""
        if not await file_settled(self.files.agent):
            log.warning("recording %s did not appear (MixMonitor)", self.rec_id)
            return None
        if mixed:
            await file_settled(self.files.wav)
        else:
            await file_settled(self.files.customer)
        files = self.files
        await asyncio.to_thread(
            functools.partial(merge_stereo, align_end=not mixed, timing=timing),
            files.agent,
            files.customer,
            files.wav,
        )

        def write() -> None:
            with db.session() as session:
                _register(session, settings, self.files.wav, facts, self.started_at, ended_at)

        await asyncio.to_thread(write)
        await asyncio.to_thread(self.files.facts.unlink, True)
        return self.rec_id

    async def discard(self, *, grace: float = 0.5) -> None:
        """The agent answered just as the far end left: nothing was said, keep no files."""
        await asyncio.sleep(grace)  # MixMonitor closes its files as the leg hangs up
        for path in (self.files.agent, self.files.customer, self.files.wav, self.files.facts):
            await asyncio.to_thread(path.unlink, True)


def _register(
    session: Session,
    settings: Settings,
    wav: Path,
    facts: RecordingFacts,
    started_at: datetime,
    ended_at: datetime,
) -> None:
    register_recording(
        session,
        settings,
        wav,
        campaign_id=facts.campaign_id,
        campaign=facts.campaign,
        elder_welfare=facts.elder_welfare,
        contact_id=facts.contact_id,
        attempt_id=facts.attempt_id,
        agent=facts.agent,
        started_at=started_at,
        ended_at=ended_at,
        source=PRACTICE_SOURCE if facts.practice else SOURCE,
        practice=facts.practice,
    )


def _read_facts(path: Path) -> RecordingFacts:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(RecordingFacts)}
        return RecordingFacts(**{k: v for k, v in raw.items() if k in known})
    except (OSError, ValueError, TypeError):
        return RecordingFacts()


def recover_orphans(settings: Settings, db: Database, *, older_than: float = 120.0) -> list[str]:
    """Merge and register recordings a crash left as ``<uuid>-agent.wav`` / ``-customer.wav``
    pairs (the call's process died before it ended): run at start-up. Returns their ids."""
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
        last_write = agent_file.stat().st_mtime
        if last_write > cutoff:
            continue  # maybe still being written
        wav = agent_file.with_name(f"{rec_id}.wav")
        customer = agent_file.with_name(f"{rec_id}-customer.wav")
        # When MixMonitor last wrote is when the call ended; the merged file is dated now.
        ended = datetime.fromtimestamp(last_write, tz=UTC)
        try:
            seconds = merge_stereo(agent_file, customer, wav)
        except Exception:
            log.exception("orphaned recording %s could not be merged", rec_id)
            continue
        facts = _read_facts(agent_file.with_name(f"{rec_id}.facts.json"))
        with db.session() as session:
            _register(session, settings, wav, facts, ended - timedelta(seconds=seconds), ended)
        agent_file.with_name(f"{rec_id}.facts.json").unlink(missing_ok=True)
        log.warning("recovered recording %s (%.0f s) left by an interrupted call", rec_id, seconds)
        done.append(rec_id)
    return done

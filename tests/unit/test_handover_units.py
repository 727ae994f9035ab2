"""The agent bridge's pieces that need no Asterisk: screen-pop headers, file layout, the stereo
merge (agent left), orphan recovery after a crash, and the per-skill waiting order."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import soundfile as sf

from agents.handover import CallOrigin, SkillQueues
from agents.handover.nailed_recording import SnoopRecording
from agents.handover.screen_pop import screen_pop_headers
from core.ari_events import event_time
from core.db import Database
from core.settings import Settings
from recordings.capture import SideTiming, merge_stereo, recording_files, recover_orphans
from recordings.models import CallRecording
from softphone.privacy import screen_fields


def test_screen_pop_headers_are_ascii_masked_and_named_for_the_softphone() -> None:
    origin = CallOrigin(
        campaign="flu-2026", contact_name="王奶奶", phone_masked="138****8000", script="flu-v1",
        fields={"clinic": "朝阳社区", "phone": "13800138000", "bad key!": "x"},
    )  # fmt: skip
    headers = screen_pop_headers(origin, skill="vaccination", attempt="a-1")
    assert headers["PJSIP_HEADER(add,X-Warmline-Campaign)"] == "flu-2026"
    assert headers["PJSIP_HEADER(add,X-Warmline-Phone)"] == "138****8000"
    assert unquote(headers["PJSIP_HEADER(add,X-Warmline-Field-Name)"]) == "王奶奶"
    assert unquote(headers["PJSIP_HEADER(add,X-Warmline-Field-clinic)"]) == "朝阳社区"
    assert "PJSIP_HEADER(add,X-Warmline-Field-phone)" not in headers, "never the full number"
    # a name that is no ASCII token (a Chinese column header, a space) travels hex-encoded
    assert unquote(headers["PJSIP_HEADER(add,X-Warmline-Field-u8-626164206b657921)"]) == "x"
    chinese = screen_pop_headers(CallOrigin(fields={"社区": "朝阳"}), skill=None, attempt="a-2")
    sent = {
        name.removeprefix("PJSIP_HEADER(add,X-Warmline-").removesuffix(")").lower(): value
        for name, value in chinese.items()
    }
    assert screen_fields(sent) == {"社区": "朝阳"}, "the softphone reads the Chinese name back"
    assert all(v.isascii() for v in headers.values())
    assert not any("13800138000" in v for v in headers.values())


def test_recording_layout_is_by_date_and_uuid() -> None:
    rec = str(uuid.uuid4())
    files = recording_files(Path("/rec"), rec, datetime(2026, 11, 23, 10, tzinfo=UTC))
    assert files.base == f"2026/11/23/{rec}"
    assert files.wav == Path(f"/rec/2026/11/23/{rec}.wav")
    assert files.agent.name == f"{rec}-agent.wav" and files.customer.name == f"{rec}-customer.wav"


def tone(path: Path, hz: float, seconds: float) -> None:
    t = np.arange(int(8000 * seconds)) / 8000
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16), 8000, subtype="PCM_16")


def test_merge_puts_the_agent_left_and_pads_the_shorter_side(tmp_path: Path) -> None:
    tone(tmp_path / "a-agent.wav", 700, 2.0)
    tone(tmp_path / "a-customer.wav", 300, 1.5)
    seconds = merge_stereo(tmp_path / "a-agent.wav", tmp_path / "a-customer.wav", tmp_path / "a.wav")
    assert seconds == 2.0
    audio, rate = sf.read(tmp_path / "a.wav", dtype="int16")
    assert rate == 8000 and audio.shape == (16000, 2)
    left = np.abs(np.fft.rfft(audio[:12000, 0].astype(float)))
    right = np.abs(np.fft.rfft(audio[:12000, 1].astype(float)))
    freqs = np.fft.rfftfreq(12000, 1 / 8000)
    assert abs(freqs[left.argmax()] - 700) < 2 and abs(freqs[right.argmax()] - 300) < 2
    assert not audio[12000:, 1].any(), "the customer's shorter file is padded with silence"
    assert not (tmp_path / "a-agent.wav").exists() and not (tmp_path / "a-customer.wav").exists()


def test_sides_that_ended_together_are_aligned_at_their_ends(tmp_path: Path) -> None:
    tone(tmp_path / "a-agent.wav", 700, 2.0)
    tone(tmp_path / "a-customer.wav", 300, 1.5)  # its recording started 0.5 s later
    seconds = merge_stereo(
        tmp_path / "a-agent.wav", tmp_path / "a-customer.wav", tmp_path / "a.wav", align_end=True
    )
    audio, _rate = sf.read(tmp_path / "a.wav", dtype="int16")
    assert seconds == 2.0 and audio.shape == (16000, 2)
    assert not audio[:4000, 1].any() and audio[4000:, 1].any(), "the later side starts 0.5 s in"
    assert audio[:4000, 0].any(), "the earlier side from the start"


def test_snoop_sides_are_placed_in_the_bridged_span_by_their_starts(tmp_path: Path) -> None:
    """A nailed call's two snoops: the agent's file started 0.3 s into the call and runs 1.5 s
    (0.6 s short of the span's end: its channel sent nothing for that long), the callee's started
    0.1 s in and runs to the end: the file is the span, the callee from 0.1 s, the agent's side
    ending with the call (its missing stretch before it)."""
    tone(tmp_path / "a-agent.wav", 700, 1.5)
    tone(tmp_path / "a-customer.wav", 300, 2.3)
    timing = SideTiming(agent_start_s=0.3, customer_start_s=0.1, span_s=2.4)
    seconds = merge_stereo(
        tmp_path / "a-agent.wav", tmp_path / "a-customer.wav", tmp_path / "a.wav", timing=timing
    )
    audio, _rate = sf.read(tmp_path / "a.wav", dtype="int16")
    assert seconds == 2.4 and audio.shape == (19200, 2), "the call's span, not the longer side"
    onset = [int(np.flatnonzero(audio[:, side])[0]) for side in (0, 1)]
    assert abs(onset[0] - 7200) <= 1 and abs(onset[1] - 800) <= 1
    assert audio[-40:, 0].any() and audio[-40:, 1].any(), "both sides end with the call"
    # with no end known (the agent hung up first), each side starts where its recording did
    tone(tmp_path / "c-agent.wav", 700, 1.5)
    tone(tmp_path / "c-customer.wav", 300, 2.0)
    open_end = SideTiming(agent_start_s=0.3, customer_start_s=0.1)
    merge_stereo(tmp_path / "c-agent.wav", tmp_path / "c-customer.wav", tmp_path / "c.wav", timing=open_end)
    audio, _rate = sf.read(tmp_path / "c.wav", dtype="int16")
    assert audio.shape == (16800, 2) and int(np.flatnonzero(audio[:, 0])[0]) in (2400, 2401)
    # a side that ran past the span's end (the snoop hung up after the callee left) is cut
    tone(tmp_path / "b-agent.wav", 700, 3.0)
    tone(tmp_path / "b-customer.wav", 300, 3.0)
    late = SideTiming(agent_start_s=-0.2, customer_start_s=0.05, span_s=2.0)
    assert (
        merge_stereo(tmp_path / "b-agent.wav", tmp_path / "b-customer.wav", tmp_path / "b.wav", timing=late)
        == 2.0
    )
    audio, _rate = sf.read(tmp_path / "b.wav", dtype="int16")
    assert audio.shape == (16000, 2)
    assert audio[:40, 0].any(), "the agent's side from the span's first ms (its head cut off)"
    assert not audio[:400, 1].any() and audio[400:440, 1].any(), "the callee's 50 ms in"


def test_snoop_timing_comes_from_asterisk_timestamps() -> None:
    started = {
        "agent": event_time({"timestamp": "2026-12-03T12:55:01.400+0000"}),
        "customer": event_time({"timestamp": "2026-12-03T12:55:01.250+0000"}),
    }
    entered = event_time({"timestamp": "2026-12-03T12:55:01.100+0000"})
    left = event_time({"timestamp": "2026-12-03T12:55:11.100+0000"})
    recording = SnoopRecording.__new__(SnoopRecording)
    recording.started = started
    timing = recording.timing(entered, left)
    assert timing is not None
    assert (round(timing.agent_start_s, 3), round(timing.customer_start_s, 3), timing.span_s) == (
        0.3,
        0.15,
        10.0,
    )
    unknown = SnoopRecording.__new__(SnoopRecording)
    unknown.started = {"agent": started["agent"], "customer": None}
    assert unknown.timing(entered, left) is None, "a start not seen: aligned at the ends as before"
    assert event_time({"timestamp": "2026-01-01T00:00:01.500+00:00"}) is not None, "the fake's form"


def test_orphaned_pairs_are_merged_and_registered(tmp_path: Path, db: Database) -> None:
    settings = Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)
    # The crash was days ago (relative to the machine's clock: a fixed date may lie in its future):
    # the pair was last written then, and lies in that day's folder.
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    day = settings.recordings_dir / f"{ended:%Y}" / f"{ended:%m}" / f"{ended:%d}"
    day.mkdir(parents=True)
    old, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    for rec in (old, fresh):
        tone(day / f"{rec}-agent.wav", 700, 1.0)
        tone(day / f"{rec}-customer.wav", 300, 1.0)
    os.utime(day / f"{old}-agent.wav", (ended.timestamp(), ended.timestamp()))
    assert recover_orphans(settings, db) == [old]
    assert (day / f"{old}.wav.enc").exists() and (day / f"{fresh}-agent.wav").exists(), (
        "a fresh pair may be live"
    )
    assert not (day / f"{old}.wav").exists(), "merged, then stored encrypted: no plain copy left"
    with db.session() as s:
        row = s.get(CallRecording, old)
        assert row is not None and row.path == f"{ended:%Y/%m/%d}/{old}.wav.enc" and row.channels == 2
        assert (settings.recordings_dir / row.path).is_file(), "the row names the file where it is"
        assert row.ended_at == ended and row.started_at == ended - timedelta(seconds=1)
    assert recover_orphans(settings, db) == [], "nothing twice"


def test_waiting_order_by_priority_then_arrival() -> None:
    q = SkillQueues()
    q.join("welfare", "c1")
    q.join("welfare", "c2")
    q.join("welfare", "c3", priority=5)
    q.join(None, "c4")
    assert [q.position("welfare", c) for c in ("c3", "c1", "c2")] == [1, 2, 3]
    assert q.position("", "c4") == 1 and q.waiting() == 4
    q.leave("welfare", "c3")
    assert q.position("welfare", "c1") == 1 and q.position("welfare", "c3") == 0

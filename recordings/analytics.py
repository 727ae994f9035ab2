"""Acoustic analytics of a call recording: who spoke when, dead air, overtalk, monologues.

A recording is stereo with the agent on one channel (left by default) and the far end (the
customer) on the other, as MixMonitor's `D` option writes it. Each channel goes through webrtcvad
with an energy gate and smoothing (`recordings.vad`); the two sides' speech segments then give the
figures (`recordings.timeline`). The file is read in blocks, never whole, so a call of any length
takes a few megabytes; the analysis is single-threaded.

    result = analyze_file("call.wav")
    print(result.to_json())

Accuracy against labelled synthetic calls (speech with home-office noise, overtalk and dead air) is
measured by tests/unit/test_analytics.py and written up in docs/analytics.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field

from recordings import timeline
from recordings.vad import ChannelVad, LinearResampler, Segment, VadSettings, smooth, vad_rate_for

ChannelName = Literal["left", "right"]
BLOCK_S = 10.0  # seconds of audio read at a time
ROUND = 3  # decimals kept in the figures (milliseconds)
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})

MONO_NOTE = (
    "mono recording: one track only, so who spoke cannot be told apart; per-side talk, share, "
    "overtalk and monologues are not given. Speech and dead air are for the track as a whole "
    "(a mixed recording: anyone speaking; a one-leg recording: that leg only)."
)


class AnalyticsError(Exception):
    """A recording that cannot be analysed; the message names the file and the reason."""


class Sides(BaseModel):
    """A figure per side; None where it cannot be known (a mono recording)."""

    agent: float | None
    customer: float | None


class SideSegments(BaseModel):
    agent: list[Segment] = Field(default_factory=list)
    customer: list[Segment] = Field(default_factory=list)


class AnalysisSettings(BaseModel):
    """Everything that changes the figures, echoed in the result so a figure can be reproduced."""

    model_config = ConfigDict(frozen=True)

    agent_channel: ChannelName = "left"
    aggressiveness: int = Field(default=VadSettings.aggressiveness, ge=0, le=3)
    frame_ms: Literal[10, 20, 30] = 30
    gate_db: float = Field(default=VadSettings.gate_db, ge=0)
    gate_low_db: float = Field(default=VadSettings.gate_low_db, ge=0)
    hangover_s: float = Field(default=VadSettings.hangover_s, ge=0)
    release_s: float = Field(default=VadSettings.release_s, ge=0)
    min_burst_s: float = Field(default=VadSettings.min_burst_s, ge=0)
    min_speech_s: float = Field(default=VadSettings.min_speech_s, ge=0)
    min_pause_s: float = Field(default=VadSettings.min_pause_s, ge=0)
    min_overtalk_s: float = Field(default=timeline.TimelineSettings.min_overtalk_s, ge=0)
    monologue_pause_s: float = Field(default=timeline.TimelineSettings.monologue_pause_s, ge=0)
    backchannel_s: float = Field(default=timeline.TimelineSettings.backchannel_s, ge=0)

    def vad(self) -> VadSettings:
        return VadSettings(
            aggressiveness=self.aggressiveness,
            frame_ms=self.frame_ms,
            gate_db=self.gate_db,
            gate_low_db=self.gate_low_db,
            hangover_s=self.hangover_s,
            release_s=self.release_s,
            min_burst_s=self.min_burst_s,
            min_speech_s=self.min_speech_s,
            min_pause_s=self.min_pause_s,
        )

    def timeline(self) -> timeline.TimelineSettings:
        return timeline.TimelineSettings(
            min_overtalk_s=self.min_overtalk_s,
            monologue_pause_s=self.monologue_pause_s,
            backchannel_s=self.backchannel_s,
        )


class CallAnalytics(BaseModel):
    """The figures of one recording. Times in seconds; shares are of all talk (they sum to 1)."""

    file: str
    duration_s: float
    sample_rate: int
    channels: int
    talk_s: Sides
    talk_share: Sides
    speech_s: float = Field(description="someone speaking (either side, or the mono track)")
    silence_s: float = Field(description="dead air between the first and the last speech")
    silence_count: int
    longest_silence_s: float
    leading_silence_s: float
    trailing_silence_s: float
    overtalk_s: float | None
    overtalk_count: int | None
    longest_monologue_s: Sides
    segments: SideSegments = Field(description="speech per side, for drawing the timeline")
    overtalk_segments: list[Segment] | None
    mono_segments: list[Segment] | None = Field(description="speech on the one track of a mono file")
    settings: AnalysisSettings
    note: str | None = None

    def to_json(self, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent)


def _r(x: float) -> float:
    return round(x, ROUND)


def _rs(segments: list[Segment]) -> list[Segment]:
    return [(_r(s), _r(e)) for s, e in segments]


def analyze_file(
    path: str | Path | BinaryIO,
    settings: AnalysisSettings | None = None,
    progress: Callable[[float, float], None] | None = None,
    *,
    name: str | None = None,
) -> CallAnalytics:
    """Analyse one recording: a file, or an open seekable stream of its audio (a stored recording
    read through ``recordings.service.open_recording``, decrypted on the fly; `name` names it).
    `progress(done_s, total_s)` is called after every block.

    Raises AnalyticsError for a file that is missing, unreadable, not audio, or has more than two
    channels.
    """
    settings = settings or AnalysisSettings()
    source: str | BinaryIO
    if isinstance(path, str | Path):
        where = str(path)
        if not Path(path).is_file():
            raise AnalyticsError(f"{where}: no such file")
        source = str(path)
    else:
        where = name or "recording"
        source = path
    try:
        info = sf.info(source)
        if not isinstance(source, str):
            source.seek(0)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AnalyticsError(f"{where}: not a readable audio file ({exc})") from exc
    channels, rate, total_frames = int(info.channels), int(info.samplerate), int(info.frames)
    if channels not in (1, 2):
        raise AnalyticsError(f"{where}: {channels} channels; a call recording has 1 (mono) or 2 (stereo)")
    if rate <= 0:
        raise AnalyticsError(f"{where}: sample rate {rate} Hz is not valid")

    vad_settings = settings.vad()
    vad_rate = vad_rate_for(rate)
    detectors = [ChannelVad(vad_rate, vad_settings) for _ in range(channels)]
    resample = LinearResampler(rate, vad_rate) if vad_rate != rate else None
    frame_len = detectors[0].frame_len
    block = (
        frame_len * max(1, round(BLOCK_S * 1000 / vad_settings.frame_ms))
        if resample is None
        else round(rate * BLOCK_S)
    )
    # libsndfile scales every format to 16 bits except float samples, which it would truncate
    floating = info.subtype in FLOAT_SUBTYPES
    read = 0
    try:
        for data in sf.blocks(
            source, blocksize=block, dtype="float32" if floating else "int16", always_2d=True
        ):
            read += len(data)
            pcm = _to_int16(data) if floating else data
            pcm = resample(pcm) if resample is not None else pcm
            if channels == 1:
                detectors[0].feed(np.ascontiguousarray(pcm[:, 0]))
            else:
                planar = np.ascontiguousarray(pcm.T)
                for c in range(channels):
                    detectors[c].feed(planar[c])
            if progress is not None:
                progress(read / rate, total_frames / rate)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise AnalyticsError(f"{where}: reading failed after {read / rate:.1f} s ({exc})") from exc

    duration = read / rate
    frame_s = detectors[0].frame_s
    tracks = [smooth(d.flags(), frame_s, vad_settings) for d in detectors]
    tl = settings.timeline()
    if channels == 1:
        fig = timeline.figures(tracks[0], [], duration, tl)
        return CallAnalytics(
            file=where,
            duration_s=_r(duration),
            sample_rate=rate,
            channels=1,
            talk_s=Sides(agent=None, customer=None),
            talk_share=Sides(agent=None, customer=None),
            speech_s=_r(fig.speech_s),
            silence_s=_r(fig.silence_s),
            silence_count=fig.silence_count,
            longest_silence_s=_r(fig.longest_silence_s),
            leading_silence_s=_r(fig.leading_silence_s),
            trailing_silence_s=_r(fig.trailing_silence_s),
            overtalk_s=None,
            overtalk_count=None,
            longest_monologue_s=Sides(agent=None, customer=None),
            segments=SideSegments(),
            overtalk_segments=None,
            mono_segments=_rs(tracks[0]),
            settings=settings,
            note=MONO_NOTE,
        )

    agent_idx = 0 if settings.agent_channel == "left" else 1
    agent, customer = tracks[agent_idx], tracks[1 - agent_idx]
    fig = timeline.figures(agent, customer, duration, tl)
    talk = fig.talk_agent_s + fig.talk_customer_s
    share = (
        Sides(agent=_r(fig.talk_agent_s / talk), customer=_r(fig.talk_customer_s / talk))
        if talk > 0
        else Sides(agent=None, customer=None)
    )
    note = None
    if not agent and not customer:
        note = "no speech found on either channel: the whole recording is dead air"
    elif not agent or not customer:
        quiet, idx = ("agent", agent_idx) if not agent else ("customer", 1 - agent_idx)
        note = f"no speech found on the {quiet}'s channel ({_channel_name(idx)}): one side only"
    return CallAnalytics(
        file=where,
        duration_s=_r(duration),
        sample_rate=rate,
        channels=2,
        talk_s=Sides(agent=_r(fig.talk_agent_s), customer=_r(fig.talk_customer_s)),
        talk_share=share,
        speech_s=_r(fig.speech_s),
        silence_s=_r(fig.silence_s),
        silence_count=fig.silence_count,
        longest_silence_s=_r(fig.longest_silence_s),
        leading_silence_s=_r(fig.leading_silence_s),
        trailing_silence_s=_r(fig.trailing_silence_s),
        overtalk_s=_r(fig.overtalk_s),
        overtalk_count=fig.overtalk_count,
        longest_monologue_s=Sides(
            agent=_r(fig.longest_monologue_agent_s), customer=_r(fig.longest_monologue_customer_s)
        ),
        segments=SideSegments(agent=_rs(agent), customer=_rs(customer)),
        overtalk_segments=_rs(fig.overtalk),
        mono_segments=None,
        settings=settings,
        note=note,
    )


def _to_int16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    out: npt.NDArray[np.int16] = np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)
    return out


def _channel_name(index: int) -> str:
    return "left" if index == 0 else "right"

"""Audio in the lab: a tone for a softphone to say, how much of a recording is that tone, its level,
and what Asterisk sends to a channel (what the person on it hears), recorded through a snoop."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

from core.ari import AriClient
from core.settings import Settings
from warmline.lab import lab_status


def tone_file(path: Path, hz: int, seconds: int = 120) -> Path:
    t = np.arange(8000 * seconds) / 8000
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16), 8000, subtype="PCM_16")
    return path


def tone_share(x: np.ndarray, hz: int, rate: int = 8000) -> float:
    """How much of the signal's energy is the tone at ``hz``."""
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    return float(spectrum[(freqs > hz - 8) & (freqs < hz + 8)].sum() / max(float(spectrum.sum()), 1e-9))


def dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(max(float(np.sqrt(np.mean((x.astype(np.float64) / 32768.0) ** 2))), 1e-9)))


async def channel_hears(settings: Settings, channel_id: str, seconds: float = 3.0) -> Path:
    """Record what Asterisk sends to a channel: a snoop (spy out) of it, in an ARI app of the
    test's own, recorded like any channel. Returns the WAV file."""
    st = lab_status(settings)
    async with AriClient(st.ari_url, st.ari_user, st.ari_password, "lab-ear") as ear:
        events = ear.events()
        assert (await anext(events))["type"] == "WarmlineConnected"
        snoop = f"ear-{uuid.uuid4().hex[:8]}"
        name = f"ear-{uuid.uuid4().hex[:8]}"
        await ear.snoop(channel_id, spy="out", snoop_id=snoop)
        async with asyncio.timeout(10):
            async for event in events:
                if event.get("type") == "StasisStart" and event["channel"]["id"] == snoop:
                    break
        await ear.record_channel(snoop, name, max_duration=int(seconds))
        async with asyncio.timeout(seconds + 10):
            async for event in events:
                if event.get("type") in ("RecordingFinished", "RecordingFailed"):
                    break
        await ear.hangup(snoop)
        await events.aclose()
    return settings.recordings_dir / f"{name}.wav"

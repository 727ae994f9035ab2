"""The headset bridge for real: PortAudio -> PulseAudio null sink -> its monitor -> PortAudio.

Needs a sound server with a loopback (e.g. `pulseaudio` with `module-null-sink` as default sink and
its `.monitor` as default source; see the softphone notes). A thread plays pjsua2's media clock
(one frame every 20 ms, like onFrameReceived/onFrameRequested), pushes a click into the speaker
buffer and waits for it to come back out of the microphone buffer. The round trip is what the
bridge adds on top of pjsua2 (both jitter buffers + PortAudio + the sound server), both ways.
"""

from __future__ import annotations

import statistics
import struct
import time

import pytest

from softphone.audio import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, JitterBuffer, SoundDevice, list_devices

pytestmark = pytest.mark.bench


def _click() -> bytes:
    return struct.pack(f"<{FRAME_SAMPLES}h", *([20000] * 16 + [0] * (FRAME_SAMPLES - 16)))


def _peak(pcm: bytes) -> int:
    samples: tuple[int, ...] = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    return max(abs(s) for s in samples)


def measure_round_trip(clicks: int = 20, cushion: int = 2) -> list[float]:
    to_call = JitterBuffer(target=cushion, max_frames=cushion + 4)
    from_call = JitterBuffer(target=cushion, max_frames=cushion + 4)
    dev = SoundDevice(to_call, from_call)
    dev.start()
    results: list[float] = []
    try:
        silence = bytes(FRAME_BYTES)
        tick = time.monotonic()
        sent_at: float | None = None
        frames_since = 0
        for _ in range(clicks * 40):
            tick += FRAME_MS / 1000
            time.sleep(max(0.0, tick - time.monotonic()))
            if sent_at is None and frames_since >= 25:
                from_call.push(_click())
                sent_at, frames_since = time.monotonic(), 0
            else:
                from_call.push(silence)
            frames_since += 1
            heard = to_call.pop()
            if sent_at is not None and _peak(heard) > 5000:
                results.append(time.monotonic() - sent_at)
                sent_at = None
            elif sent_at is not None and frames_since > 40:
                sent_at = None  # lost: try again
    finally:
        dev.stop()
    print(f"portaudio reported latency in/out: {dev.latency}")
    return results


def test_bridge_round_trip_latency() -> None:
    if not any(d["inputs"] and d["outputs"] for d in list_devices()):
        pytest.skip("no full-duplex sound device (start a PulseAudio null sink)")
    trips = measure_round_trip()
    assert len(trips) >= 10, f"clicks did not come back: {trips}"
    ms = sorted(t * 1000 for t in trips)
    print(
        f"bridge round trip over {len(ms)} clicks: median {statistics.median(ms):.1f} ms, "
        f"min {ms[0]:.1f}, max {ms[-1]:.1f}"
    )
    assert statistics.median(ms) < 400

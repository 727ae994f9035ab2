"""The headset: pjsua2's conference bridge <-> a jitter buffer <-> PortAudio (`sounddevice`).

The published pjsua2 build has no sound devices, so a custom `AudioMediaPort` (`SoundBridge`)
joins the call. Its `onFrameReceived`/`onFrameRequested` run on pjsua2's media clock (every
20 ms); PortAudio's callback runs on the sound card's clock. Two `JitterBuffer`s sit between the two
clocks, one per direction. Each holds a small cushion (`target` frames, 2 = 40 ms by default) so
neither side starves when the other is a little late, and trims itself back to the cushion when the
clocks drift apart (a frame dropped, counted), or refills it after an underrun (silence played,
counted). The cushion is the latency the bridge adds on top of the sound system's own.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2


@dataclass
class JitterStats:
    pushed: int = 0
    popped: int = 0
    underruns: int = 0
    dropped: int = 0
    level_sum: int = 0

    @property
    def mean_level(self) -> float:
        return self.level_sum / self.popped if self.popped else 0.0


class JitterBuffer:
    """A thread-safe FIFO of fixed-size PCM frames between two clocks.

    `pop` never blocks: before the cushion is built up (at start and after an underrun) it returns
    silence. When more than `max_frames` wait, the oldest is dropped, so latency cannot creep up.
    """

    def __init__(self, frame_bytes: int = FRAME_BYTES, target: int = 2, max_frames: int = 6) -> None:
        if not 1 <= target < max_frames:
            raise ValueError("need 1 <= target < max_frames")
        self.frame_bytes = frame_bytes
        self.target = target
        self.max_frames = max_frames
        self.stats = JitterStats()
        self._silence = bytes(frame_bytes)
        self._frames: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._filling = True

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: bytes) -> None:
        if len(frame) != self.frame_bytes:
            frame = frame[: self.frame_bytes].ljust(self.frame_bytes, b"\0")
        with self._lock:
            self._frames.append(frame)
            self.stats.pushed += 1
            while len(self._frames) > self.max_frames:
                self._frames.popleft()
                self.stats.dropped += 1
            if self._filling and len(self._frames) >= self.target:
                self._filling = False

    def pop(self) -> bytes:
        with self._lock:
            self.stats.popped += 1
            self.stats.level_sum += len(self._frames)
            if self._filling:
                return self._silence
            if not self._frames:
                self.stats.underruns += 1
                self._filling = True
                return self._silence
            return self._frames.popleft()

    @property
    def added_latency_ms(self) -> float:
        """The mean time a frame waited here (mean queue length x frame duration)."""
        ms_per_frame = self.frame_bytes / 2 / RATE * 1000
        return self.stats.mean_level * ms_per_frame


def tone(freq: float = 440.0, ms: int = FRAME_MS, amplitude: float = 0.3, phase: int = 0) -> bytes:
    n = RATE * ms // 1000
    amp = int(32767 * amplitude)
    return struct.pack(
        f"<{n}h", *(int(amp * math.sin(2 * math.pi * freq * (phase + i) / RATE)) for i in range(n))
    )


def level_dbfs(pcm: bytes) -> float:
    """RMS level of 16-bit PCM in dBFS (-inf for digital silence)."""
    n = len(pcm) // 2
    if n == 0:
        return -math.inf
    samples = struct.unpack(f"<{n}h", pcm[: n * 2])
    rms = math.sqrt(sum(s * s for s in samples) / n)
    return 20 * math.log10(rms / 32768) if rms else -math.inf


def list_devices() -> list[dict[str, Any]]:
    """Sound devices PortAudio sees: index, name, input/output channels, default flags."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        log.warning("no sound library: %s", exc)
        return []
    default_in, default_out = sd.default.device
    out = []
    for i, d in enumerate(sd.query_devices()):
        out.append(
            {
                "index": i,
                "name": str(d["name"]),
                "inputs": int(d["max_input_channels"]),
                "outputs": int(d["max_output_channels"]),
                "default_input": i == default_in,
                "default_output": i == default_out,
            }
        )
    return out


def _device(choice: str | None) -> int | str | None:
    if choice is None or choice == "":
        return None
    return int(choice) if choice.isdigit() else choice


class SoundDevice:
    """The PortAudio side: one full-duplex 16 kHz mono stream feeding/draining two jitter buffers."""

    def __init__(
        self,
        to_call: JitterBuffer,
        from_call: JitterBuffer,
        input_device: str | None = None,
        output_device: str | None = None,
    ) -> None:
        self.to_call = to_call
        self.from_call = from_call
        self.input_device = input_device
        self.output_device = output_device
        self.stream: Any = None
        self.latency: tuple[float, float] = (0.0, 0.0)
        self.status_flags = 0

    def start(self) -> None:
        import sounddevice as sd

        def callback(indata: Any, outdata: Any, frames: int, _time: Any, status: Any) -> None:
            if status:
                self.status_flags += 1
            self.to_call.push(bytes(indata))
            outdata[:] = self.from_call.pop()

        self.stream = sd.RawStream(
            samplerate=RATE,
            blocksize=FRAME_SAMPLES,
            channels=1,
            dtype="int16",
            latency="low",
            device=(_device(self.input_device), _device(self.output_device)),
            callback=callback,
        )
        self.stream.start()
        lat = self.stream.latency
        self.latency = (float(lat[0]), float(lat[1]))

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
            self.stream = None


def _make_port_class() -> type:
    import pjsua2 as pj

    class _Port(pj.AudioMediaPort):  # type: ignore[misc]
        def __init__(self, bridge: SoundBridge) -> None:
            super().__init__()
            self.bridge = bridge

        def onFrameRequested(self, frame: Any) -> None:
            data = self.bridge.to_call.pop()
            self.bridge.on_mic(data)
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(data)
            frame.size = len(data)

        def onFrameReceived(self, frame: Any) -> None:
            if int(frame.type) != pj.PJMEDIA_FRAME_TYPE_AUDIO or not int(frame.size):
                return
            data = bytes(frame.buf)
            self.bridge.on_speaker(data)
            self.bridge.from_call.push(data)

    return _Port


class SoundBridge:
    """A `MediaSink` for the engine: the headset as a port on pjsua2's conference bridge.

    `create`/`destroy`/`connect`/`disconnect` run on the pjsua2 thread (the engine calls them).
    `probe` hooks let a measurement see frames as they cross (see `measure_loopback`).
    """

    def __init__(
        self,
        input_device: str | None = None,
        output_device: str | None = None,
        *,
        cushion: int = 2,
        with_device: bool = True,
    ) -> None:
        self.to_call = JitterBuffer(target=cushion, max_frames=cushion + 4)
        self.from_call = JitterBuffer(target=cushion, max_frames=cushion + 4)
        self.device = SoundDevice(self.to_call, self.from_call, input_device, output_device)
        self.with_device = with_device
        self.port: Any = None
        self.mic_probe: Any = None
        self.speaker_probe: Any = None

    def on_mic(self, data: bytes) -> None:
        if self.mic_probe is not None:
            self.mic_probe(data)

    def on_speaker(self, data: bytes) -> None:
        if self.speaker_probe is not None:
            self.speaker_probe(data)

    def create(self) -> None:
        import pjsua2 as pj

        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.clockRate = RATE
        fmt.channelCount = 1
        fmt.bitsPerSample = 16
        fmt.frameTimeUsec = FRAME_MS * 1000
        self.port = _make_port_class()(self)
        self.port.createPort("headset", fmt)
        if self.with_device:
            self.device.start()

    def destroy(self) -> None:
        self.device.stop()
        self.port = None

    def connect(self, call_audio: Any) -> None:
        call_audio.startTransmit(self.port)
        self.port.startTransmit(call_audio)

    def disconnect(self, call_audio: Any) -> None:
        call_audio.stopTransmit(self.port)
        self.port.stopTransmit(call_audio)

    def test_tone(self, seconds: float = 1.0, freq: float = 440.0) -> None:
        """Play a tone into the headphones now (through the same buffer calls use)."""
        frames = int(seconds * 1000 / FRAME_MS)
        for i in range(frames):
            self.from_call.push(tone(freq, phase=i * FRAME_SAMPLES))
            time.sleep(FRAME_MS / 1000 * 0.9)

    def mic_check(self, seconds: float = 1.0) -> float:
        """The microphone's level over `seconds`, in dBFS (about -60 or lower means silent)."""
        seen: list[bytes] = []
        previous = self.mic_probe
        self.mic_probe = seen.append
        time.sleep(seconds)
        self.mic_probe = previous
        return level_dbfs(b"".join(seen))


async def attach_sound(
    engine: Any, input_device: str | None, output_device: str | None
) -> SoundBridge | None:
    """Attach a headset bridge to the engine, or None (said in the log) when there is no sound."""
    if not list_devices():
        log.warning("no sound devices: calls will be silent on this PC")
        return None
    bridge = SoundBridge(input_device, output_device)
    try:
        await engine.attach_sink(bridge)
    except Exception as exc:
        log.warning("sound device could not be opened: %s", exc)
        return None
    return bridge

"""Speech detection for one channel of a call recording: webrtcvad frames, then smoothing.

The raw decision is webrtcvad's, frame by frame (16-bit mono PCM at 8, 16, 32 or 48 kHz; 10, 20 or
30 ms frames). Audio arrives in blocks (see `recordings.analytics`); a `ChannelVad` keeps the few
samples that do not fill a frame for the next block, so block boundaries change nothing.

Two things sit around webrtcvad, because on its own it marks steady background noise (a fan, a
hissing line) as speech and it cannot tell a click from a syllable:

- an **energy gate** with hysteresis: a stretch of webrtcvad speech counts only where it is
  `gate_low_db` above the channel's noise floor and reaches `gate_db` above it somewhere. The
  floor is tracked per channel: a running low quantile of frame energy, so it follows a noise
  level that changes during the call and never needs the whole call in memory;
- **smoothing** (`smooth`): dips shorter than `hangover_s` are filled (between syllables), runs
  without `min_burst_s` of unbroken speech are dropped (a click, a train of clicks from typing),
  `release_s` is added at every end, pauses shorter than `min_pause_s` are bridged (a pause
  between words or a breath is not silence), and what is left shorter than `min_speech_s` is
  dropped (an isolated knock).

Only one byte per frame is kept for the whole call (about 33 bytes a second per channel at 30 ms
frames); audio itself is never held beyond one block.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import numpy.typing as npt
import webrtcvad

try:  # the C function under webrtcvad.Vad.is_speech; without it the wrapper works, a little slower
    _PROCESS: Callable[..., bool] | None = importlib.import_module("_webrtcvad").process
except (ImportError, AttributeError):  # pragma: no cover
    _PROCESS = None

VAD_RATES = (8000, 16000, 32000, 48000)
FRAME_MS = (10, 20, 30)

Segment = tuple[float, float]
Int16Array = npt.NDArray[np.int16]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class VadSettings:
    """How speech is told from non-speech. The defaults are the ones validated in the tests."""

    aggressiveness: int = 1
    """webrtcvad mode 0-3: higher says "speech" less readily."""
    frame_ms: int = 30
    """10, 20 or 30; 30 is the fastest (and the one validated)."""
    gate_db: float = 9.0
    """Speech must reach this many dB above the running noise floor somewhere (0: no gate)."""
    gate_low_db: float = 2.0
    """...and every frame of it must be this many dB above the floor."""
    hangover_s: float = 0.15
    """Gaps shorter than this are filled first: the dips between the syllables of a word."""
    release_s: float = 0.03
    """Added to the end of every stretch of speech: a word's fading end lies under the noise."""
    min_burst_s: float = 0.08
    """Speech must hold this long unbroken somewhere, or it is a click (or a train of clicks)."""
    min_speech_s: float = 0.2
    """Segments shorter than this (after bridging) are dropped: an isolated knock, a pop."""
    min_pause_s: float = 0.6
    """Pauses shorter than this inside a side's speech are bridged: they are talk, not silence."""

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0, 1, 2 or 3, not {self.aggressiveness}")
        if self.frame_ms not in FRAME_MS:
            raise ValueError(f"frame_ms must be 10, 20 or 30, not {self.frame_ms}")
        if (
            min(
                self.gate_db,
                self.gate_low_db,
                self.hangover_s,
                self.release_s,
                self.min_burst_s,
                self.min_speech_s,
                self.min_pause_s,
            )
            < 0
        ):
            raise ValueError("gates, hangover, minimum speech and minimum pause must not be negative")


def vad_rate_for(rate: int) -> int:
    """The rate webrtcvad is fed for a file at `rate`: the same if supported, else the nearest below
    (8 kHz for anything slower). webrtcvad itself works on the 0-4 kHz band, so nothing is lost."""
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, not {rate}")
    if rate in VAD_RATES:
        return rate
    below = [r for r in VAD_RATES if r < rate]
    return below[-1] if below else VAD_RATES[0]


class LinearResampler:
    """Streaming linear-interpolation resampler for a (frames, channels) block sequence.

    Good enough for voice activity detection (not for listening): the interpolation is a mild
    low-pass, and webrtcvad band-limits to 0-4 kHz itself. State crosses block boundaries exactly.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.step = rate_in / rate_out
        self._pos = 0.0  # position of the next output sample, in input samples from `_prev`
        self._prev: npt.NDArray[np.float32] | None = None

    def __call__(self, block: npt.NDArray[np.int16]) -> Int16Array:
        x = block.astype(np.float32)
        if self._prev is not None:
            x = np.concatenate([self._prev, x])
        n = len(x)
        if n == 0:
            return np.zeros((0, block.shape[1]), dtype=np.int16)
        if self._pos > n - 1:  # too few samples for one output sample: keep the last, move on
            self._pos -= n - 1
            self._prev = x[-1:]
            return np.zeros((0, block.shape[1]), dtype=np.int16)
        count = int((n - 1 - self._pos) // self.step) + 1
        t = self._pos + self.step * np.arange(count)
        i = t.astype(np.int64)
        frac = (t - i).astype(np.float32)[:, None]
        y = x[i] * (1.0 - frac) + x[np.minimum(i + 1, n - 1)] * frac
        self._pos = float(t[-1] + self.step - (n - 1))
        self._prev = x[-1:]
        out: Int16Array = np.clip(np.rint(y), -32768, 32767).astype(np.int16)
        return out


class ChannelVad:
    """webrtcvad plus the energy gate for one channel, fed contiguous int16 samples block by block.

    Per frame three facts are kept (one byte): webrtcvad says speech; the frame is `gate_low_db`
    above the noise floor; it is `gate_db` above. `flags()` joins them with hysteresis: a stretch of
    webrtcvad speech above the low threshold counts if somewhere in it the high threshold is
    reached. The high threshold keeps noise out; the low one
    keeps a word's soft onset and its fading end, which a single threshold would clip.
    """

    # The noise floor is the `FLOOR_Q` quantile of frame energies in a window of recent frames;
    # quiet frames are plentiful in any call (every pause), so a low quantile finds the noise. A
    # louder noise (a fan switched on) is taken for the floor after about 0.9 of the window.
    FLOOR_Q = 0.1
    FLOOR_WINDOW_S = 6.0
    FLOOR_STEP_S = 1.0
    _DIGITAL_SILENCE_DB = -90.0  # dBFS per frame: below this a frame is never speech
    VAD, LOW, HIGH = 1, 2, 4

    def __init__(self, rate: int, settings: VadSettings) -> None:
        if rate not in VAD_RATES:
            raise ValueError(f"webrtcvad takes 8, 16, 32 or 48 kHz, not {rate} Hz")
        self.rate = rate
        self.settings = settings
        self.frame_len = rate * settings.frame_ms // 1000
        self._frame_bytes = self.frame_len * 2
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        self._carry = b""
        self._codes = bytearray()
        self._window = max(1, round(self.FLOOR_WINDOW_S * 1000 / settings.frame_ms))
        self._step = max(1, round(self.FLOOR_STEP_S * 1000 / settings.frame_ms))
        self._recent_db = np.zeros(0, dtype=np.float32)

    @property
    def frame_s(self) -> float:
        return self.settings.frame_ms / 1000

    def feed(self, samples: Int16Array) -> None:
        """Classify every whole frame in `samples` (plus what was left from the last call)."""
        data = samples.tobytes() if not self._carry else self._carry + samples.tobytes()
        whole = len(data) - len(data) % self._frame_bytes
        if whole == 0:
            self._carry = data
            return
        fb = self._frame_bytes
        chunks = [data[i : i + fb] for i in range(0, whole, fb)]
        codes = np.fromiter(self._classify(chunks), dtype=np.uint8, count=len(chunks))
        if self.settings.gate_db > 0:
            codes |= self._levels(np.frombuffer(data, dtype=np.int16, count=whole // 2))
        else:
            codes *= self.VAD | self.LOW | self.HIGH
        self._codes += codes.tobytes()
        self._carry = data[whole:]

    def _classify(self, chunks: list[bytes]) -> Iterator[bool]:
        """webrtcvad on each frame. `Vad.is_speech` is a Python wrapper that only checks the length
        and calls the C function; the frames here are whole by construction, so the C function is
        called directly when it is there (a quarter less time per frame), else the wrapper."""
        handle = getattr(self._vad, "_vad", None)
        if _PROCESS is None or handle is None:
            return map(self._vad.is_speech, chunks, repeat(self.rate))
        return map(_PROCESS, repeat(handle), repeat(self.rate), chunks, repeat(self.frame_len))

    def _levels(self, pcm: Int16Array) -> npt.NDArray[np.uint8]:
        frames = pcm.reshape(-1, self.frame_len).astype(np.float32)
        energy = np.einsum("ij,ij->i", frames, frames)
        db = 10.0 * np.log10(energy / (self.frame_len * 32768.0**2) + 1e-12)
        # The floor, every `FLOOR_STEP_S`: from those frames plus a window of earlier ones, so a
        # stretch of speech still sees the pauses before it. Digital silence (a muted leg, padding)
        # is not noise and would pull the floor to nothing, so it is left out.
        floor = np.empty_like(db)
        for k in range(0, len(db), self._step):
            part = db[k : k + self._step]
            self._recent_db = np.concatenate([self._recent_db, part])[-self._window :]
            live = self._recent_db[self._recent_db > self._DIGITAL_SILENCE_DB]
            if live.size:  # the FLOOR_Q quantile, by partition: np.quantile costs over ten times more
                nth = int(self.FLOOR_Q * (live.size - 1))
                floor[k : k + self._step] = np.partition(live, nth)[nth]
            else:
                floor[k : k + self._step] = self._DIGITAL_SILENCE_DB
        floor = np.maximum(floor, self._DIGITAL_SILENCE_DB)
        low = (db > floor + self.settings.gate_low_db).astype(np.uint8) * self.LOW
        high = (db > floor + self.settings.gate_db).astype(np.uint8) * self.HIGH
        # A click (a key, a pop) puts nearly all of a frame's energy into one 5 ms slice; speech,
        # voiced or not, spreads it over the frame.
        levels: npt.NDArray[np.uint8] = low | high
        return levels

    def flags(self) -> BoolArray:
        """Speech or not, one flag per whole frame so far (a trailing part-frame is not classified)."""
        codes = np.frombuffer(bytes(self._codes), dtype=np.uint8)
        candidate: BoolArray = (codes & (self.VAD | self.LOW)) == (self.VAD | self.LOW)
        starts, ends = runs(candidate)
        if not starts.size:
            return candidate
        seeded = np.maximum.reduceat(candidate & ((codes & self.HIGH) > 0), starts)
        out = np.zeros(len(codes), dtype=np.bool_)
        for s, e in zip(starts[seeded], ends[seeded], strict=True):
            out[s:e] = True
        return out


def runs(flags: BoolArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Start and end (exclusive) frame indices of every run of True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2].astype(np.int64), edges[1::2].astype(np.int64)


def _bridge(
    starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64], shorter_than: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    if not starts.size:
        return starts, ends
    joined = (starts[1:] - ends[:-1]) < shorter_than - 1e-9
    return starts[np.concatenate([[True], ~joined])], ends[np.concatenate([~joined, [True]])]


def smooth(flags: BoolArray, frame_s: float, settings: VadSettings) -> list[Segment]:
    """Frame flags to speech segments in seconds, in five steps:

    1. gaps shorter than `hangover_s` are filled (the dips between syllables);
    2. a run so joined is kept only if it holds `min_burst_s` of unbroken speech somewhere: a
       click is a frame or two, and a train of them (typing) never has such a stretch;
    3. `release_s` (whole frames) is added to every end;
    4. pauses shorter than `min_pause_s` are bridged (between words and phrases);
    5. segments still shorter than `min_speech_s` are dropped (an isolated knock or pop).
    """
    raw_starts, raw_ends = runs(flags)
    if not raw_starts.size:
        return []
    starts, ends = _bridge(raw_starts, raw_ends, settings.hangover_s / frame_s)
    group = np.searchsorted(starts, raw_starts, side="right") - 1  # which joined run each raw run is in
    longest = np.zeros(len(starts), dtype=np.int64)
    np.maximum.at(longest, group, raw_ends - raw_starts)
    keep = longest >= settings.min_burst_s / frame_s - 1e-9
    ends = np.minimum(ends + round(settings.release_s / frame_s), len(flags))
    starts, ends = _bridge(starts[keep], ends[keep], settings.min_pause_s / frame_s)
    keep = (ends - starts) >= settings.min_speech_s / frame_s - 1e-9
    return [(float(s) * frame_s, float(e) * frame_s) for s, e in zip(starts[keep], ends[keep], strict=True)]

"""A PromptCache that makes silent WAVs of a fixed length: no TTS engine, no sox, no threads.

The flow runner and the dialer only need a file whose length says how long the prompt plays;
what it says is not what these tests are about (tests/unit/test_ivr_tts.py covers that).
"""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

from ivr.tts import SAMPLE_RATE, PromptCache


class _NoEngine:
    name = "silent"
    version = "1"

    def synthesize(self, text: str, voice: str, *, out_dir: Path) -> Path:
        raise AssertionError("SilentPrompts never synthesizes")


class SilentPrompts(PromptCache):
    """Every spoken prompt is `seconds` of silence, one file per text; `spoken` lists the texts."""

    def __init__(self, root: Path, *, seconds: float = 2.0) -> None:
        super().__init__(root, _NoEngine())
        self.seconds = seconds
        self.spoken: list[str] = []

    def _silence_file(self, key: str, seconds: float) -> Path:
        path = self.root / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.wav"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(SAMPLE_RATE)
                w.writeframes(b"\0\0" * round(seconds * SAMPLE_RATE))
        return path

    async def speak(self, text: str, voice: str | None = None, *, personal: bool = False) -> Path:
        self.spoken.append(text.strip())
        return self._silence_file(f"say:{voice}:{text.strip()}", self.seconds)

    async def file(self, source: Path) -> Path:
        return self._silence_file(f"file:{source}", self.seconds)

    async def silence(self, seconds: float) -> Path:
        return self._silence_file(f"silence:{seconds}", seconds)

"""Speaking the phone's announcements through the agent's screen reader while the page is not in focus.

One interface, `Speaker`, and `SpeechOutput`, which asks the speakers of this platform in order and
speaks through the first whose screen reader or service is running *now* (an agent may start NVDA
after the phone, or close it):

- Windows: 争渡读屏's own API (`ZDSRAPI_x64.dll`, which Tolk does not know), then Tolk (through
  `cytolk`, which ships the NVDA controller client and Tolk's drivers for JAWS, SuperNova,
  System Access, ZoomText and Window-Eyes), then SAPI 5 (`comtypes`, a Chinese voice when one is
  installed). Through the screen reader's own interface the agent hears their own voice, speed and
  settings, and the reader's own speech is not cut into by a second synthesiser.
- Linux: speech-dispatcher over its SSIP socket (`softphone.speech.ssip`, the protocol Orca uses
  through the same daemon).

Speakers block (a DLL call, a socket), so the desk calls `SpeechOutput.say` from a worker thread.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)

CHOICES = ("auto", "off", "speechd", "zdsr", "tolk", "sapi")


class SpeechError(RuntimeError):
    """A speaker failed to speak (its reader went away, its socket closed)."""


class Speaker(Protocol):
    name: str

    def running(self) -> bool:
        """Whether its screen reader or speech service is there now (cheap; asked before each say)."""
        ...

    def speak(self, text: str, *, interrupt: bool = False, language: str = "zh_CN") -> None:
        """Say `text`; `interrupt` first stops what it was saying. Raises SpeechError."""
        ...

    def close(self) -> None: ...


class SpeechOutput:
    """The first running speaker in order says each text; a failing one is skipped for the next."""

    def __init__(self, speakers: Sequence[Speaker]) -> None:
        self.speakers = list(speakers)
        self.last_used: str | None = None
        self._warned = False  # "nothing running" is logged once per silence, not per announcement

    def say(self, text: str, *, interrupt: bool = False, language: str = "zh_CN") -> str | None:
        """Speak `text`; the name of the speaker that said it, or None when none could."""
        for speaker in self.speakers:
            try:
                if not speaker.running():
                    continue
                speaker.speak(text, interrupt=interrupt, language=language)
            except SpeechError as exc:
                log.warning("speech through %s failed: %s", speaker.name, exc)
                continue
            if speaker.name != self.last_used:
                log.info("speaking through %s", speaker.name)
            self.last_used = speaker.name
            return speaker.name
        if self.last_used is not None or not self._warned:
            log.warning("no screen reader or speech service is running: announcement not spoken")
            self._warned = True
        self.last_used = None
        return None

    def close(self) -> None:
        for speaker in self.speakers:
            try:
                speaker.close()
            except Exception:
                log.exception("closing %s", speaker.name)


def platform_speakers(choice: str = "auto", *, platform: str = sys.platform) -> list[Speaker]:
    """The speakers to try, in order, for `choice` (one of CHOICES) on `platform`."""
    if choice not in CHOICES:
        raise ValueError(f"speech must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "off":
        return []
    speakers: list[Speaker] = []
    if platform == "win32":
        from softphone.speech.windows import SapiSpeaker, TolkSpeaker, ZdsrSpeaker

        if choice in ("auto", "zdsr"):
            speakers.append(ZdsrSpeaker())
        if choice in ("auto", "tolk"):
            speakers.append(TolkSpeaker())
        if choice in ("auto", "sapi"):
            speakers.append(SapiSpeaker())
    elif choice in ("auto", "speechd"):
        from softphone.speech.ssip import SpeechDispatcher

        speakers.append(SpeechDispatcher())
    return speakers

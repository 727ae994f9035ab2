"""The Windows speakers: 争渡读屏's API, Tolk (NVDA, JAWS and others), SAPI 5.

Each loads its library on first use through a loader it is given (ctypes, `cytolk`, `comtypes` in
real use; fakes in tests/unit/test_speech.py), and a library that cannot be loaded makes that
speaker "not running", never an error for the phone.

- 争渡读屏 publishes `ZDSRAPI_x64.dll` (`ZDSRAPI.dll` for 32-bit) for programs to speak through it:
  `InitTTS(type, channel)` (0 = speak through 争渡's own voice), `Speak(text, interrupt)`,
  `GetSpeakState()` (3 or 4 while 争渡 runs), `StopSpeak()`. The DLL comes with 争渡's SDK and is
  not on PyPI: the installer copies it to %LOCALAPPDATA%\\warmline\\softphone when given
  (`-ZdsrDll`); else it is looked for at `WARMLINE_ZDSR_DLL` and on PATH.
- Tolk is what many accessible Windows programs use; `cytolk` ships it with the NVDA controller
  client. Only a running screen reader counts here (SAPI is the next speaker, with a Chinese voice).
- SAPI 5 (`SAPI.SpVoice` over COM through `comtypes`): present on every Windows, asynchronous,
  purged before an interrupting message; the first installed zh-CN voice (language 804) is chosen.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from softphone.speech import SpeechError

log = logging.getLogger(__name__)

ZDSR_DLL = "ZDSRAPI_x64.dll"
ZDSR_RUNNING_STATES = (3, 4)
SVSF_ASYNC, SVSF_PURGE = 1, 2
SAPI_LANGUAGE = {"zh_CN": "804", "en": "409"}


def _installed_zdsr_dll() -> str | None:
    """Where packaging/softphone/install.ps1 -ZdsrDll puts 争渡's DLL."""
    local = os.environ.get("LOCALAPPDATA")
    path = os.path.join(local, "warmline", "softphone", ZDSR_DLL) if local else None
    return path if path and os.path.exists(path) else None


def _windll(path: str) -> Any:
    import ctypes

    return ctypes.WinDLL(path)  # type: ignore[attr-defined]


class ZdsrSpeaker:
    name = "zdsr"

    def __init__(self, dll: str | None = None, loader: Callable[[str], Any] = _windll) -> None:
        self.dll_path = dll or os.environ.get("WARMLINE_ZDSR_DLL") or _installed_zdsr_dll() or ZDSR_DLL
        self._loader = loader
        self._api: Any = None
        self._failed = False

    def _load(self) -> Any:
        if self._api is None and not self._failed:
            try:
                api = self._loader(self.dll_path)
                if api.InitTTS(0, "") != 0:
                    raise OSError("InitTTS refused")
                self._api = api
            except (OSError, AttributeError) as exc:
                log.info("争渡 API not available (%s): %s", self.dll_path, exc)
                self._failed = True
        return self._api

    def running(self) -> bool:
        api = self._load()
        return api is not None and api.GetSpeakState() in ZDSR_RUNNING_STATES

    def speak(self, text: str, *, interrupt: bool = False, language: str = "zh_CN") -> None:
        api = self._load()
        if api is None or api.Speak(text, 1 if interrupt else 0) != 0:
            raise SpeechError("争渡读屏 did not take the text")

    def close(self) -> None:
        self._api = None


def _cytolk() -> Any:
    from cytolk import tolk

    return tolk


class TolkSpeaker:
    name = "tolk"

    def __init__(self, loader: Callable[[], Any] = _cytolk) -> None:
        self._loader = loader
        self._tolk: Any = None
        self._failed = False

    def _load(self) -> Any:
        if self._tolk is None and not self._failed:
            try:
                tolk = self._loader()
                tolk.try_sapi(False)  # SAPI is the next speaker, with a chosen Chinese voice
                tolk.load()
                self._tolk = tolk
            except (ImportError, OSError) as exc:
                log.info("Tolk not available: %s", exc)
                self._failed = True
        return self._tolk

    def running(self) -> bool:
        tolk = self._load()
        return tolk is not None and tolk.detect_screen_reader() is not None

    def screen_reader(self) -> str | None:
        tolk = self._load()
        return None if tolk is None else tolk.detect_screen_reader()

    def speak(self, text: str, *, interrupt: bool = False, language: str = "zh_CN") -> None:
        tolk = self._load()
        if tolk is None or not tolk.speak(text, interrupt):
            raise SpeechError("the screen reader did not take the text")

    def close(self) -> None:
        if self._tolk is not None:
            self._tolk.unload()
            self._tolk = None


def _sapi_voice() -> Any:
    import comtypes.client

    return comtypes.client.CreateObject("SAPI.SpVoice")


class SapiSpeaker:
    name = "sapi"

    def __init__(self, loader: Callable[[], Any] = _sapi_voice) -> None:
        self._loader = loader
        self._voice: Any = None
        self._failed = False
        self._language: str | None = None

    def _load(self) -> Any:
        if self._voice is None and not self._failed:
            try:
                self._voice = self._loader()
            except Exception as exc:  # ImportError, OSError or comtypes' COMError (not an OSError)
                log.info("SAPI not available: %s", exc)
                self._failed = True
        return self._voice

    def running(self) -> bool:
        return self._load() is not None

    def _choose_voice(self, voice: Any, language: str) -> None:
        if language == self._language:
            return
        self._language = language
        tokens = voice.GetVoices(f"Language={SAPI_LANGUAGE.get(language, '804')}", "")
        if tokens.Count:
            voice.Voice = tokens.Item(0)
        else:
            log.warning("no SAPI voice for %s is installed; the default voice speaks", language)

    def speak(self, text: str, *, interrupt: bool = False, language: str = "zh_CN") -> None:
        voice = self._load()
        if voice is None:
            raise SpeechError("SAPI is not available")
        try:
            self._choose_voice(voice, language)
            voice.Speak(text, SVSF_ASYNC | (SVSF_PURGE if interrupt else 0))
        except Exception as exc:  # COMError is no OSError
            raise SpeechError(f"SAPI failed: {exc}") from exc

    def close(self) -> None:
        self._voice = None

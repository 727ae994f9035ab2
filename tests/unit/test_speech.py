"""Speech through the screen reader: the order speakers are tried in and the fallback when one is not
running or fails; the Windows speakers' logic with their libraries behind loaders (争渡's DLL, Tolk,
SAPI); the SSIP client against a stand-in speech-dispatcher on a real Unix socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from softphone.speech import SpeechError, SpeechOutput, platform_speakers
from softphone.speech.ssip import SpeechDispatcher, default_address, encode_message
from softphone.speech.windows import SapiSpeaker, TolkSpeaker, ZdsrSpeaker
from tests.fakes.ssip import SsipRecorder


class Recorded:
    def __init__(self, name: str, running: bool = True, fails: bool = False) -> None:
        self.name = name
        self.is_running = running
        self.fails = fails
        self.said: list[tuple[str, bool, str]] = []
        self.closed = False

    def running(self) -> bool:
        return self.is_running

    def speak(self, text: str, *, interrupt: bool = False, language: str = "zh_CN") -> None:
        if self.fails:
            raise SpeechError(f"{self.name} went away")
        self.said.append((text, interrupt, language))

    def close(self) -> None:
        self.closed = True


def test_the_first_running_speaker_speaks() -> None:
    zdsr, nvda, sapi = Recorded("zdsr", running=False), Recorded("tolk"), Recorded("sapi")
    out = SpeechOutput([zdsr, nvda, sapi])
    assert out.say("来电", interrupt=True) == "tolk"
    assert nvda.said == [("来电", True, "zh_CN")] and not sapi.said and not zdsr.said


def test_a_screen_reader_started_later_is_used_from_then_on() -> None:
    nvda, sapi = Recorded("tolk", running=False), Recorded("sapi")
    out = SpeechOutput([nvda, sapi])
    assert out.say("一") == "sapi"
    nvda.is_running = True
    assert out.say("二") == "tolk"
    assert [t for t, *_ in sapi.said] == ["一"] and [t for t, *_ in nvda.said] == ["二"]


def test_a_failing_speaker_falls_back_to_the_next() -> None:
    nvda, sapi = Recorded("tolk", fails=True), Recorded("sapi")
    assert SpeechOutput([nvda, sapi]).say("三") == "sapi"


def test_nothing_running_is_no_error() -> None:
    out = SpeechOutput([Recorded("tolk", running=False)])
    assert out.say("四") is None
    out.close()
    assert out.speakers[0].closed  # type: ignore[attr-defined]


def test_platform_order() -> None:
    assert [s.name for s in platform_speakers("auto", platform="win32")] == ["zdsr", "tolk", "sapi"]
    assert [s.name for s in platform_speakers("sapi", platform="win32")] == ["sapi"]
    assert [s.name for s in platform_speakers("auto", platform="linux")] == ["speech-dispatcher"]
    assert platform_speakers("off", platform="win32") == []
    with pytest.raises(ValueError, match="speech must be one of"):
        platform_speakers("loud")


# -- Windows speakers, their libraries faked ----------------------------------------------------


class FakeZdsrDll:
    def __init__(self, state: int = 3, init: int = 0) -> None:
        self.state, self.init = state, init
        self.spoken: list[tuple[str, int]] = []

    def InitTTS(self, kind: int, channel: str) -> int:
        return self.init

    def GetSpeakState(self) -> int:
        return self.state

    def Speak(self, text: str, interrupt: int) -> int:
        self.spoken.append((text, interrupt))
        return 0


def test_zdsr_speaks_while_zdsr_runs() -> None:
    dll = FakeZdsrDll()
    zdsr = ZdsrSpeaker("ZDSRAPI_x64.dll", loader=lambda path: dll)
    assert zdsr.running()
    zdsr.speak("已接通", interrupt=True)
    assert dll.spoken == [("已接通", 1)]
    dll.state = 1  # 争渡 closed
    assert not zdsr.running()


def test_zdsr_without_its_dll_is_simply_not_running() -> None:
    def missing(path: str) -> Any:
        raise OSError(f"{path} not found")

    zdsr = ZdsrSpeaker("ZDSRAPI_x64.dll", loader=missing)
    assert not zdsr.running()
    with pytest.raises(SpeechError):
        zdsr.speak("x")
    assert not ZdsrSpeaker(loader=lambda p: FakeZdsrDll(init=-1)).running()


class FakeTolk:
    def __init__(self, reader: str | None) -> None:
        self.reader = reader
        self.sapi: bool | None = None
        self.spoken: list[tuple[str, bool]] = []
        self.loaded = False

    def try_sapi(self, on: bool) -> None:
        self.sapi = on

    def load(self) -> None:
        self.loaded = True

    def unload(self) -> None:
        self.loaded = False

    def detect_screen_reader(self) -> str | None:
        return self.reader

    def speak(self, text: str, interrupt: bool) -> bool:
        self.spoken.append((text, interrupt))
        return True


def test_tolk_counts_only_a_real_screen_reader() -> None:
    tolk = FakeTolk("NVDA")
    speaker = TolkSpeaker(loader=lambda: tolk)
    assert speaker.running() and speaker.screen_reader() == "NVDA"
    assert tolk.sapi is False, "SAPI is the next speaker, never Tolk's own fallback"
    speaker.speak("来电", interrupt=True)
    assert tolk.spoken == [("来电", True)]
    tolk.reader = None
    assert not speaker.running()
    speaker.close()
    assert not tolk.loaded


class FakeVoices:
    def __init__(self, count: int) -> None:
        self.Count = count

    def Item(self, n: int) -> str:
        return f"voice-{n}"


class FakeSpVoice:
    def __init__(self, chinese: int = 1) -> None:
        self.chinese = chinese
        self.Voice: object = None
        self.asked: list[str] = []
        self.spoken: list[tuple[str, int]] = []

    def GetVoices(self, required: str, optional: str) -> FakeVoices:
        self.asked.append(required)
        return FakeVoices(self.chinese)

    def Speak(self, text: str, flags: int) -> None:
        self.spoken.append((text, flags))


def test_sapi_chooses_a_chinese_voice_and_speaks_asynchronously() -> None:
    voice = FakeSpVoice()
    sapi = SapiSpeaker(loader=lambda: voice)
    assert sapi.running()
    sapi.speak("您好", interrupt=True)
    sapi.speak("再见")
    assert voice.asked == ["Language=804"] and voice.Voice == "voice-0"
    assert voice.spoken == [("您好", 1 | 2), ("再见", 1)]  # async, purged before an interruption


# -- SSIP, on a real socket ------------------------------------------------------------------------


def test_ssip_message_encoding_doubles_leading_dots() -> None:
    assert encode_message("一\n.二") == "一\r\n..二\r\n.\r\n".encode()


def test_ssip_address_follows_speech_dispatcher() -> None:
    assert default_address({"SPEECHD_ADDRESS": "inet_socket:127.0.0.1:6560"}) == "inet_socket:127.0.0.1:6560"
    assert default_address({"XDG_RUNTIME_DIR": "/run/user/1000"}) == (
        "unix_socket:/run/user/1000/speech-dispatcher/speechd.sock"
    )


def test_ssip_client_speaks_to_a_speech_dispatcher(tmp_path: Path) -> None:
    with SsipRecorder(tmp_path / "speechd.sock") as recorder:
        client = SpeechDispatcher(recorder.address, spawn=False)
        assert client.running()
        client.speak("来电：138****8000。\n.按 F2 接听。", interrupt=True)
        client.speak("Call ended.", language="en")
        client.close()
        said = recorder.wait_for("138****8000")
        assert said.text == "来电：138****8000。\n.按 F2 接听。"
        assert said.language == "zh" and said.client == "user:warmline:softphone"
        assert recorder.wait_for("Call ended").language == "en"
        assert "CANCEL self" in recorder.commands and recorder.commands[-1] == "QUIT"


def test_ssip_without_a_daemon_is_not_running(tmp_path: Path) -> None:
    client = SpeechDispatcher(f"unix_socket:{tmp_path / 'none.sock'}", spawn=False)
    assert not client.running()
    with pytest.raises(SpeechError, match="not reachable"):
        client.speak("x")

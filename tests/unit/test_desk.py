"""The desk on a simulated phone: a global key runs the phone's action as the page's key does, its
refusal is said; announcements are spoken only while no page has the focus; a key the desktop
would not give is named; the agent's settings file and options decide server, user, keys, speech."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import typer

from core.i18n import use_locale
from softphone.agent_config import ConfigError, load_config, remember_user
from softphone.cli import desk_settings
from softphone.desk import Desk, PageFocus
from softphone.fake import FakeEngine
from softphone.hotkeys import HotkeyUnavailable, Refusal
from softphone.hotkeys.keys import KeySpec, hotkey_map
from softphone.phone import Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.speech import SpeechOutput
from tests.utils import until

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")


class KeyboardBackend:
    """The desktop's hot-key service: `press(action)` arrives from its own thread, as in real use."""

    def __init__(self, refuse: set[str] | None = None, unavailable: str | None = None) -> None:
        self.refuse = refuse or set()
        self.unavailable = unavailable
        self.on_key: Callable[[str], None] | None = None
        self.stopped = False

    def start(self, keys: Mapping[str, KeySpec], on_key: Callable[[str], None]) -> list[Refusal]:
        if self.unavailable:
            raise HotkeyUnavailable(self.unavailable)
        self.on_key = on_key
        return [
            Refusal(a, k, f"{k} is already taken by another program.")
            for a, k in keys.items()
            if a in self.refuse
        ]

    def stop(self) -> None:
        self.stopped = True

    def press(self, action: str) -> None:
        assert self.on_key is not None
        t = threading.Thread(target=self.on_key, args=(action,))
        t.start()
        t.join()


class Voice:
    name = "voice"

    def __init__(self) -> None:
        self.said: list[tuple[str, bool]] = []

    def running(self) -> bool:
        return True

    def speak(self, text: str, *, interrupt: bool = False, language: str = "zh_CN") -> None:
        self.said.append((text, interrupt))

    def close(self) -> None:
        pass


@pytest.fixture
async def desk():
    engine = FakeEngine()
    phone = Softphone(engine, AgentStatus("mei", NullPublisher()))
    voice = Voice()
    backend = KeyboardBackend(refuse={"hours"})
    d = Desk(phone, keys=hotkey_map(), backend=backend, speech=SpeechOutput([voice]), focus=PageFocus())
    with use_locale("en"):
        await d.start()
        await phone.start()
        yield d, engine, phone, backend, voice
        await d.close()
        await phone.close()
    assert backend.stopped


async def test_a_key_from_another_window_answers_and_the_call_is_spoken(desk) -> None:
    _d, engine, phone, backend, voice = desk
    cid = engine.ring("13800138000")
    await until(lambda: any("Incoming call" in t for t, _ in voice.said), what="the ring spoken")
    ring_said, interrupting = next((t, i) for t, i in voice.said if "Incoming call" in t)
    assert "138****8000" in ring_said and "Or press Ctrl+Shift+F2 in any window." in ring_said
    assert interrupting, "a ring interrupts what the screen reader was saying"
    backend.press("answer")
    await until(lambda: phone.calls.get(cid) is not None and phone.calls[cid].status == "connected")
    await until(lambda: any("Connected to" in t for t, _ in voice.said))
    backend.press("mute")
    await until(lambda: phone.calls[cid].muted)
    backend.press("hangup")
    await until(lambda: cid not in phone.calls)


async def test_a_key_that_cannot_act_now_says_why(desk) -> None:
    _d, _engine, _phone, backend, voice = desk
    backend.press("answer")
    await until(lambda: any(t == "No call is ringing." for t, _ in voice.said))
    backend.press("repeat")
    await until(lambda: [t for t, _ in voice.said].count("No call is ringing.") == 2)
    backend.press("status")
    await until(lambda: any(t.startswith("You are logged out. Phone") for t, _ in voice.said))


async def test_a_refused_key_is_named_and_the_others_listed(desk) -> None:
    d, _engine, phone, _backend, _voice = desk
    texts = [a.text for a in phone.announcements]
    assert any(
        "“My day: hear and see today's hours, calls and overtime” does not work: Ctrl+Shift+F11" in t
        for t in texts
    )
    listing = next(t for t in texts if t.startswith("Keys from any window:"))
    assert "Ctrl+Shift+F2 Answer the ringing call" in listing and "F11" not in listing
    assert "hours" not in d.active


async def test_nothing_is_spoken_while_the_page_has_the_focus(desk) -> None:
    d, engine, phone, _backend, voice = desk
    await until(lambda: voice.said, what="the start announcements")
    d.focus.page_opened()
    d.focus.focused = True
    before = len(voice.said)
    engine.ring("13800138001")
    await until(lambda: any("Incoming call" in a.text for a in phone.announcements))
    d.focus.page_closed()  # the page went away without a blur: its focus goes with it
    assert not d.focus.focused
    engine.ring("13800138002")
    await until(lambda: any("138****8002" in t for t, _ in voice.said))
    assert not any("138****8001" in t for t, _ in voice.said[before:])


async def test_no_global_keys_on_this_desktop_is_said() -> None:
    phone = Softphone(FakeEngine(), AgentStatus("mei", NullPublisher()))
    d = Desk(phone, keys=hotkey_map(), backend=KeyboardBackend(unavailable="No X display."))
    with use_locale("en"):
        await d.start()
    assert phone.announcements[-1].text == "Keys from any window are off: No X display."
    await d.close()


# -- settings: the file and the options ---------------------------------------------------------


def test_settings_file_and_options(tmp_path: Path) -> None:
    path = tmp_path / "softphone.toml"
    path.write_text('server = "https://cc.example.org"\nspeech = "sapi"\n[hotkeys]\nhours = "off"\n', "utf-8")
    s = desk_settings(
        path, None, "mei", headless=False, hotkeys=None, hotkey=["answer=Ctrl+Alt+P"], speech=None
    )
    assert s.server == "https://cc.example.org" and s.speech == "sapi"
    assert str(s.keys["answer"]) == "Ctrl+Alt+P" and "hours" not in s.keys
    s.remember("mei")
    assert load_config(path).user == "mei" and load_config(path).hotkeys == {"hours": "off"}
    headless = desk_settings(path, "http://x", "mei", headless=True, hotkeys=None, hotkey=None, speech=None)
    assert headless.keys == {} and headless.speech == "off"


def test_a_bad_key_stops_the_start_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with use_locale("en"), pytest.raises(typer.Exit):
        desk_settings(
            None, "http://x", "mei", headless=False, hotkeys=True, hotkey=["mute=Ctrl+Alt+N"], speech=None
        )
    assert "mute: Ctrl+Alt+N is already used for starting NVDA" in capsys.readouterr().err


def test_settings_file_mistakes_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "softphone.toml"
    path.write_text('server = "https://x"\nvolume = 3\n', "utf-8")
    with use_locale("en"), pytest.raises(ConfigError, match=r"softphone.toml: unknown setting volume"):
        load_config(path)
    path.write_text("server = https://x\n", "utf-8")
    with pytest.raises(ConfigError, match=r"softphone.toml.*line 1"):
        load_config(path)


def test_remembering_the_user_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "warmline" / "softphone.toml"
    config = load_config(path)
    remember_user(config, "梅")
    path.write_text(
        path.read_text("utf-8") + 'server = "https://x"\n# 注释\n[hotkeys]\nmute = "off"\n', "utf-8"
    )
    remember_user(load_config(path), "lan")
    loaded = load_config(path)
    assert (loaded.user, loaded.server, loaded.hotkeys) == ("lan", "https://x", {"mute": "off"})
    assert "# 注释" in path.read_text("utf-8")

"""Global hot keys: how keys are written and refused (each refusal names the key), the default set,
and the Windows backend's logic with user32 behind its seam (registration, a key another program
holds, WM_HOTKEY to the action, every key given back)."""

from __future__ import annotations

import queue
import threading

import pytest

from core.i18n import use_locale
from softphone.hotkeys import Refusal
from softphone.hotkeys.keys import ACTIONS, HotkeyError, KeySpec, hotkey_map, parse_key, refusal
from softphone.hotkeys.windows import (
    ERROR_HOTKEY_ALREADY_REGISTERED,
    MOD_ALT,
    MOD_CONTROL,
    MOD_NOREPEAT,
    MOD_SHIFT,
    WM_HOTKEY,
    WindowsHotkeys,
    modifier_flags,
    virtual_key,
)
from softphone.hotkeys.x11 import keysym_name


@pytest.fixture(autouse=True)
def english():
    with use_locale("en"):
        yield


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("Ctrl+Shift+F2", KeySpec(("Ctrl", "Shift"), "F2")),
        ("shift+ctrl+f2", KeySpec(("Ctrl", "Shift"), "F2")),
        (" Control + Alt + p ", KeySpec(("Ctrl", "Alt"), "P")),
        ("ctrl+alt+pgdn", KeySpec(("Ctrl", "Alt"), "PageDown")),
        ("Ctrl+Shift+kp5", KeySpec(("Ctrl", "Shift"), "Numpad5")),
        ("F13", KeySpec((), "F13")),
    ],
)
def test_keys_are_read_in_any_spelling_and_written_one_way(text: str, spec: KeySpec) -> None:
    assert parse_key(text) == spec
    assert parse_key(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "write a key as Ctrl+Shift+F2"),
        ("Ctrl+Shift", "Ctrl+Shift: a modifier needs a key after it"),
        ("Hyper+F2", "Hyper+F2: Hyper is not Ctrl, Alt, Shift or Win"),
        ("Ctrl+Shift+Blah", "Ctrl+Shift+Blah: Blah is not a key name"),
        ("NVDA+F2", "NVDA+F2: the screen reader's key"),
        ("Ctrl+Insert", "Ctrl+Insert: the screen reader's key"),
        ("CapsLock+Ctrl+F2", "CapsLock+Ctrl+F2: the screen reader's key"),
        ("Ctrl++", "Ctrl++: the + key"),
    ],
)
def test_a_key_that_is_not_a_key_is_refused_naming_it(text: str, said: str) -> None:
    with pytest.raises(HotkeyError) as err:
        parse_key(text)
    assert said in str(err.value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Win+A", "belong to Windows"),
        ("Ctrl+Shift+NumLock", "NumLock is the screen reader's key"),
        ("Ctrl+Shift+Numpad5", "Numpad5 is the screen reader's key"),
        ("Ctrl+Alt+N", "Ctrl+Alt+N is already used for starting NVDA"),
        ("Ctrl+Alt+A", "QQ's screenshot"),
        ("Ctrl+Space", "Chinese input method"),
        ("Alt+F4", "closing the window"),
        ("Ctrl+Alt+F2", "text console on Linux"),
        ("F2", "F2: a global key needs Ctrl or Alt"),
        ("Shift+F2", "Shift+F2: a global key needs Ctrl or Alt"),
        ("Ctrl+C", "Ctrl+C: programs use Ctrl or Alt with a letter"),
        ("Alt+1", "Alt+1: programs use Ctrl or Alt with a letter"),
    ],
)
def test_keys_others_need_are_refused_saying_who_needs_them(text: str, why: str) -> None:
    said = refusal(parse_key(text))
    assert said is not None and why in said, said
    assert said.startswith(str(parse_key(text))), "the refusal starts with the key it refuses"


def test_the_default_set_is_whole_and_refuses_nothing() -> None:
    keys = hotkey_map()
    assert (
        set(keys)
        == {a.name for a in ACTIONS}
        == {
            "answer",
            "hangup",
            "hold",
            "mute",
            "repeat",
            "status",
            "hours",
        }
    )
    assert all(refusal(k) is None for k in keys.values())
    assert len(set(keys.values())) == len(keys)
    assert str(keys["answer"]) == "Ctrl+Shift+F2"


def test_the_agents_choice_replaces_a_default_and_off_turns_one_off() -> None:
    keys = hotkey_map({"answer": "ctrl+alt+p", "hours": "off"})
    assert str(keys["answer"]) == "Ctrl+Alt+P"
    assert "hours" not in keys


def test_every_problem_is_said_at_once_each_with_its_key_and_action() -> None:
    with pytest.raises(HotkeyError) as err:
        hotkey_map({"answer": "Ctrl+Shift+F8", "hold": "F7", "dance": "Ctrl+Shift+D"})
    said = str(err.value)
    assert "dance is not a hot-key action" in said
    assert "hold: F7: a global key needs Ctrl or Alt" in said
    assert "Ctrl+Shift+F8 is given to both answer and mute" in said


def test_refusals_are_said_in_chinese_by_default() -> None:
    with use_locale("zh_CN"), pytest.raises(HotkeyError) as err:
        hotkey_map({"answer": "Ctrl+Alt+N"})
    assert "Ctrl+Alt+N" in str(err.value)
    assert "NVDA" in str(err.value) and "已" in str(err.value)


# -- the platforms' key codes -------------------------------------------------------------------


def test_windows_virtual_keys_and_modifiers() -> None:
    assert virtual_key("F2") == 0x71 and virtual_key("F24") == 0x87
    assert virtual_key("A") == 0x41 and virtual_key("7") == 0x37
    assert virtual_key("Numpad5") == 0x65 and virtual_key("PageDown") == 0x22
    assert modifier_flags(parse_key("Ctrl+Shift+F2")) == MOD_CONTROL | MOD_SHIFT | MOD_NOREPEAT
    assert modifier_flags(parse_key("Ctrl+Alt+F9")) == MOD_CONTROL | MOD_ALT | MOD_NOREPEAT


def test_x11_keysym_names() -> None:
    assert keysym_name("F2") == "F2"
    assert keysym_name("A") == "a"
    assert keysym_name("PageUp") == "Prior"
    assert keysym_name("Numpad3") == "KP_3"


# -- the Windows backend, user32 behind its seam -------------------------------------------------


class FakeUser32:
    """user32 as the backend's thread sees it: RegisterHotKey fails for `held` keys with 1409
    (another program holds them); messages are fed by the test; WM_QUIT ends GetMessage."""

    def __init__(self, held: set[tuple[int, int]] | None = None) -> None:
        self.held = held or set()
        self.registered: dict[int, tuple[int, int]] = {}
        self.unregistered: list[int] = []
        self.messages: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self.error = 0
        self.thread_id = 4242
        self.thread: threading.Thread | None = None

    def register_hot_key(self, hotkey_id: int, modifiers: int, vk: int) -> bool:
        self.thread = threading.current_thread()
        if (modifiers, vk) in self.held:
            self.error = ERROR_HOTKEY_ALREADY_REGISTERED
            return False
        self.registered[hotkey_id] = (modifiers, vk)
        return True

    def unregister_hot_key(self, hotkey_id: int) -> bool:
        assert threading.current_thread() is self.thread, "a hot key is given back by its own thread"
        self.unregistered.append(hotkey_id)
        return True

    def last_error(self) -> int:
        return self.error

    def get_message(self) -> tuple[int, int] | None:
        assert threading.current_thread() is self.thread, "WM_HOTKEY arrives on the registering thread"
        return self.messages.get()

    def current_thread_id(self) -> int:
        return self.thread_id

    def post_quit(self, thread_id: int) -> None:
        assert thread_id == self.thread_id
        self.messages.put(None)

    def press(self, modifiers: int, vk: int) -> None:
        hotkey_id = next(i for i, key in self.registered.items() if key == (modifiers, vk))
        self.messages.put((WM_HOTKEY, hotkey_id))


def test_windows_backend_registers_reports_taken_keys_and_runs_actions() -> None:
    keys = hotkey_map()
    taken = (modifier_flags(keys["mute"]), virtual_key(keys["mute"].key))
    user32 = FakeUser32(held={taken})
    backend = WindowsHotkeys(user32_factory=lambda: user32)
    pressed: queue.Queue[str] = queue.Queue()
    with use_locale("en"):
        refused = backend.start(keys, pressed.put)
    assert refused == [Refusal("mute", keys["mute"], "Ctrl+Shift+F8 is already taken by another program.")]
    assert len(user32.registered) == len(keys) - 1
    user32.messages.put((0x0100, 1))  # some other message: ignored
    user32.press(MOD_CONTROL | MOD_SHIFT | MOD_NOREPEAT, 0x71)  # Ctrl+Shift+F2
    assert pressed.get(timeout=5) == "answer"
    backend.stop()
    assert sorted(user32.unregistered) == sorted(user32.registered)
    assert pressed.empty()


def test_windows_backend_without_user32_says_so() -> None:
    from softphone.hotkeys import HotkeyUnavailable

    def no_user32() -> FakeUser32:
        raise OSError("user32 not found")

    with pytest.raises(HotkeyUnavailable, match="user32 not found"):
        WindowsHotkeys(user32_factory=no_user32).start(hotkey_map(), print)

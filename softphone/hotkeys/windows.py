"""Global hot keys on Windows: `RegisterHotKey` on a thread of our own, `WM_HOTKEY` from its queue.

A hot key registered without a window belongs to the thread that registered it, and its
`WM_HOTKEY` arrives in that thread's message queue; so one thread registers every key, reports
which Windows refused (error 1409: another program holds it), loops on `GetMessageW`, and gives
the keys back when `stop()` posts it `WM_QUIT`. `MOD_NOREPEAT`: holding a key is one press.

Every user32 call goes through `User32`, so the logic is tested on Linux with a fake
(tests/unit/test_hotkeys.py); `CtypesUser32` is the real one.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from core.i18n import _
from softphone.hotkeys import HotkeyUnavailable, Refusal
from softphone.hotkeys.keys import KeySpec

log = logging.getLogger(__name__)

MOD_ALT, MOD_CONTROL, MOD_SHIFT, MOD_WIN, MOD_NOREPEAT = 0x1, 0x2, 0x4, 0x8, 0x4000
WM_HOTKEY, WM_QUIT = 0x0312, 0x0012
ERROR_HOTKEY_ALREADY_REGISTERED = 1409
START_TIMEOUT_S = 10.0

VK: dict[str, int] = {
    "Pause": 0x13,
    "ScrollLock": 0x91,
    "Home": 0x24,
    "End": 0x23,
    "PageUp": 0x21,
    "PageDown": 0x22,
    "Insert": 0x2D,
    "Delete": 0x2E,
    "Up": 0x26,
    "Down": 0x28,
    "Left": 0x25,
    "Right": 0x27,
    "Space": 0x20,
    "Enter": 0x0D,
    "Tab": 0x09,
    "Escape": 0x1B,
    "Backspace": 0x08,
    "CapsLock": 0x14,
    "NumLock": 0x90,
    "Period": 0xBE,
}


def virtual_key(key: str) -> int:
    """The Windows virtual-key code of a KeySpec key."""
    if key in VK:
        return VK[key]
    if key.startswith("Numpad"):
        return 0x60 + int(key[6:])
    if key.startswith("F") and key[1:].isdigit():
        return 0x6F + int(key[1:])  # F1 = 0x70 … F24 = 0x87
    return ord(key)  # A–Z and 0–9 are their ASCII codes


def modifier_flags(spec: KeySpec) -> int:
    bits = {"Ctrl": MOD_CONTROL, "Alt": MOD_ALT, "Shift": MOD_SHIFT, "Win": MOD_WIN}
    flags = MOD_NOREPEAT
    for m in spec.modifiers:
        flags |= bits[m]
    return flags


class User32(Protocol):
    """The few user32/kernel32 calls the backend makes (a seam for tests)."""

    def register_hot_key(self, hotkey_id: int, modifiers: int, vk: int) -> bool: ...
    def unregister_hot_key(self, hotkey_id: int) -> bool: ...
    def last_error(self) -> int: ...
    def get_message(self) -> tuple[int, int] | None:
        """The next (message, wParam) of this thread's queue; None on WM_QUIT or error."""
        ...

    def current_thread_id(self) -> int: ...
    def post_quit(self, thread_id: int) -> None: ...


class CtypesUser32:
    """user32 through ctypes (Windows only)."""

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        self._ctypes = ctypes
        self._user32: Any = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
        self._kernel32: Any = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        self._msg = wintypes.MSG()
        self._user32.RegisterHotKey.argtypes = [wintypes.HWND, ctypes.c_int, wintypes.UINT, wintypes.UINT]
        self._user32.RegisterHotKey.restype = wintypes.BOOL
        self._user32.UnregisterHotKey.argtypes = [wintypes.HWND, ctypes.c_int]
        self._user32.GetMessageW.argtypes = [
            ctypes.POINTER(wintypes.MSG),
            wintypes.HWND,
            wintypes.UINT,
            wintypes.UINT,
        ]
        self._user32.GetMessageW.restype = wintypes.BOOL
        self._user32.PostThreadMessageW.argtypes = [
            wintypes.DWORD,
            wintypes.UINT,
            wintypes.WPARAM,
            wintypes.LPARAM,
        ]

    def register_hot_key(self, hotkey_id: int, modifiers: int, vk: int) -> bool:
        return bool(self._user32.RegisterHotKey(None, hotkey_id, modifiers, vk))

    def unregister_hot_key(self, hotkey_id: int) -> bool:
        return bool(self._user32.UnregisterHotKey(None, hotkey_id))

    def last_error(self) -> int:
        return int(self._ctypes.get_last_error())  # type: ignore[attr-defined]

    def get_message(self) -> tuple[int, int] | None:
        got = self._user32.GetMessageW(self._ctypes.byref(self._msg), None, 0, 0)
        if got in (0, -1):
            return None
        return int(self._msg.message), int(self._msg.wParam)

    def current_thread_id(self) -> int:
        return int(self._kernel32.GetCurrentThreadId())

    def post_quit(self, thread_id: int) -> None:
        self._user32.PostThreadMessageW(thread_id, WM_QUIT, 0, 0)


class WindowsHotkeys:
    def __init__(self, user32_factory: Callable[[], User32] | None = None) -> None:
        self._factory = user32_factory or CtypesUser32
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._user32: User32 | None = None

    def start(self, keys: Mapping[str, KeySpec], on_key: Callable[[str], None]) -> list[Refusal]:
        ready = threading.Event()
        outcome: dict[str, Any] = {"refused": [], "error": None}

        def run() -> None:
            try:
                user32 = self._factory()
            except (OSError, AttributeError) as exc:  # no user32: not Windows
                outcome["error"] = exc
                ready.set()
                return
            self._user32 = user32
            self._thread_id = user32.current_thread_id()
            ids: dict[int, str] = {}
            for n, (action, spec) in enumerate(keys.items(), start=1):
                if user32.register_hot_key(n, modifier_flags(spec), virtual_key(spec.key)):
                    ids[n] = action
                    continue
                code = user32.last_error()
                reason = (
                    _("{key} is already taken by another program.", key=str(spec))
                    if code == ERROR_HOTKEY_ALREADY_REGISTERED
                    else _("Windows refused {key} (error {code}).", key=str(spec), code=code)
                )
                outcome["refused"].append(Refusal(action, spec, reason))
            ready.set()
            try:
                while (message := user32.get_message()) is not None:
                    kind, wparam = message
                    if kind == WM_HOTKEY and wparam in ids:
                        try:
                            on_key(ids[wparam])
                        except Exception:
                            log.exception("hot key %s not handled", ids[wparam])
            finally:
                for n in ids:
                    user32.unregister_hot_key(n)

        # The refusals are said in the caller's language: the thread runs in a copy of its context.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(run,), name="hotkeys-windows", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S):
            raise HotkeyUnavailable(_("Windows did not answer when the hot keys were registered."))
        if outcome["error"] is not None:
            raise HotkeyUnavailable(_("No Windows hot-key service: {error}", error=outcome["error"]))
        refused: list[Refusal] = outcome["refused"]
        return refused

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._user32 is not None and self._thread_id is not None:
            self._user32.post_quit(self._thread_id)
        self._thread.join(5)
        self._thread = None

"""Global hot keys: the softphone's keys that work while the agent is in another window.

One interface, `HotkeyBackend`, with one implementation per desktop:

- Windows (`softphone.hotkeys.windows`): `RegisterHotKey` from user32 through ctypes. It is the
  system's own hot-key service: Windows tells us when another program already holds a key, the key
  is consumed (the focused program does not also act on it), it runs after the screen reader's
  keyboard hook (NVDA and 争渡 see their keys first) and needs no keyboard hook of our own — a
  Python low-level hook (pynput's way) is dropped by Windows when it is slow and is the kind of
  thing screen readers fight with.
- X11 (`softphone.hotkeys.x11`): `XGrabKey` on the root window through python-xlib (pure Python,
  the X protocol itself; pynput uses it too): the same semantics — the key is consumed, and the X
  server says when another client already grabbed it. Wayland has no global keys for ordinary
  programs; there the desk says so and the page's keys still work.

A backend runs its own thread and calls `on_key(action)` from it; `softphone.desk` hands that to
the asyncio loop.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from softphone.hotkeys.keys import KeySpec


@dataclass(frozen=True)
class Refusal:
    """A key the desktop would not give us (another program holds it), with why, said to the agent."""

    action: str
    key: KeySpec
    reason: str


class HotkeyUnavailable(RuntimeError):
    """No global keys on this desktop (no X display, Wayland, no user32); the message says why."""


class HotkeyBackend(Protocol):
    def start(self, keys: Mapping[str, KeySpec], on_key: Callable[[str], None]) -> list[Refusal]:
        """Take `keys` (action -> key); return the ones the desktop refused. Raises HotkeyUnavailable."""
        ...

    def stop(self) -> None:
        """Give every key back and end the thread."""
        ...


def platform_backend() -> HotkeyBackend:
    """The backend for this desktop."""
    if sys.platform == "win32":
        from softphone.hotkeys.windows import WindowsHotkeys

        return WindowsHotkeys()
    from softphone.hotkeys.x11 import X11Hotkeys

    return X11Hotkeys()

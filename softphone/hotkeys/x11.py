"""Global hot keys on X11: a passive `XGrabKey` on the root window per key (python-xlib).

Each key is grabbed four times, with and without Caps Lock and Num Lock, so it works whichever
lock is on. A grab another client already holds fails with BadAccess: that key is refused (named)
and the others still work. Held keys auto-repeat as release/press pairs with one timestamp; such a
press is not a new press and is dropped.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Mapping
from typing import Any

from core.i18n import _
from softphone.hotkeys import HotkeyUnavailable, Refusal
from softphone.hotkeys.keys import KeySpec

log = logging.getLogger(__name__)

# KeySpec.key -> X keysym name
KEYSYM_NAMES: dict[str, str] = {
    "Pause": "Pause",
    "ScrollLock": "Scroll_Lock",
    "Home": "Home",
    "End": "End",
    "PageUp": "Prior",
    "PageDown": "Next",
    "Insert": "Insert",
    "Delete": "Delete",
    "Up": "Up",
    "Down": "Down",
    "Left": "Left",
    "Right": "Right",
    "Space": "space",
    "Enter": "Return",
    "Tab": "Tab",
    "Escape": "Escape",
    "Backspace": "BackSpace",
    "CapsLock": "Caps_Lock",
    "NumLock": "Num_Lock",
    "Period": "period",
}


def keysym_name(key: str) -> str:
    if key in KEYSYM_NAMES:
        return KEYSYM_NAMES[key]
    if key.startswith("Numpad"):
        return f"KP_{key[6:]}"
    if len(key) == 1:
        return key.lower()
    return key  # F1…F24


def modifier_mask(spec: KeySpec) -> int:
    from Xlib import X

    bits = {"Ctrl": X.ControlMask, "Alt": X.Mod1Mask, "Shift": X.ShiftMask, "Win": X.Mod4Mask}
    mask = 0
    for m in spec.modifiers:
        mask |= bits[m]
    return mask


class X11Hotkeys:
    def __init__(self, display_name: str | None = None) -> None:
        self.display_name = display_name
        self._display: Any = None
        self._grabs: dict[tuple[int, int], str] = {}
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1

    def start(self, keys: Mapping[str, KeySpec], on_key: Callable[[str], None]) -> list[Refusal]:
        from Xlib import XK, X, display, error

        if not (self.display_name or os.environ.get("DISPLAY")):
            raise HotkeyUnavailable(
                _("No X display: global keys need an X11 desktop (Wayland gives them to no program).")
            )
        try:
            self._display = display.Display(self.display_name)
        except (error.DisplayError, OSError) as exc:
            raise HotkeyUnavailable(_("The X display could not be opened: {error}", error=exc)) from exc
        root = self._display.screen().root
        locks = (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask)
        refused: list[Refusal] = []
        for action, spec in keys.items():
            keycode = self._display.keysym_to_keycode(XK.string_to_keysym(keysym_name(spec.key)))
            if not keycode:
                refused.append(Refusal(action, spec, _("{key} is not on this keyboard.", key=str(spec))))
                continue
            mask = modifier_mask(spec)
            catcher = error.CatchError(error.BadAccess)
            for lock in locks:
                root.grab_key(keycode, mask | lock, True, X.GrabModeAsync, X.GrabModeAsync, onerror=catcher)
            self._display.sync()
            if catcher.get_error() is not None:
                for lock in locks:
                    root.ungrab_key(keycode, mask | lock)
                self._display.sync()
                refused.append(
                    Refusal(action, spec, _("{key} is already taken by another program.", key=str(spec)))
                )
                continue
            self._grabs[(keycode, mask)] = action
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, args=(on_key,), name="hotkeys-x11", daemon=True)
        self._thread.start()
        return refused

    def _loop(self, on_key: Callable[[str], None]) -> None:
        from Xlib import X

        meaningful = X.ControlMask | X.Mod1Mask | X.ShiftMask | X.Mod4Mask
        released_at: dict[int, int] = {}
        while True:
            ready, _w, _x = select.select([self._display.fileno(), self._wake_r], [], [])
            if self._wake_r in ready:
                return
            while self._display.pending_events():
                event = self._display.next_event()
                if event.type == X.KeyRelease:
                    released_at[event.detail] = event.time
                elif event.type == X.KeyPress:
                    if released_at.get(event.detail) == event.time:
                        continue  # auto-repeat of a held key
                    action = self._grabs.get((event.detail, event.state & meaningful))
                    if action is not None:
                        try:
                            on_key(action)
                        except Exception:
                            log.exception("hot key %s not handled", action)

    def stop(self) -> None:
        if self._display is None:
            return
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(5)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._thread = None
        from Xlib import X

        root = self._display.screen().root
        for keycode, mask in self._grabs:
            for lock in (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask):
                root.ungrab_key(keycode, mask | lock)
        self._grabs.clear()
        self._display.close()
        self._display = None

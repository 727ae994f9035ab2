"""Global hot keys as the agent writes them ("Ctrl+Shift+F2"): parsing, the default set, refusals.

A global key is taken from every other program while the softphone runs, so a key is refused when
it would take something the agent needs: a key without Ctrl or Alt (typing), Ctrl or Alt with a
letter or digit alone (copy, paste, menus), the Windows key, the screen reader's own keys (Insert,
Caps Lock, the number pad — NVDA's and 争渡's modifier and review keys), and a table of shortcuts
that Windows, NVDA, Chinese input methods and the chat programs agents keep open already use.
Every refusal names the key and says why, in the agent's language.

The defaults are the page's own keys (F2 answer, F4 hang up, F7 hold, F8 mute) with Ctrl+Shift,
which none of those use; docs/agents.md and docs/zh/坐席指南.md carry the table and the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from core.i18n import N_, _

MODIFIERS = ("Ctrl", "Alt", "Shift", "Win")
_MODIFIER_ALIASES = {
    "ctrl": "Ctrl",
    "control": "Ctrl",
    "ctl": "Ctrl",
    "alt": "Alt",
    "option": "Alt",
    "shift": "Shift",
    "win": "Win",
    "windows": "Win",
    "super": "Win",
    "meta": "Win",
    "cmd": "Win",
}
_NAMED_KEYS = (
    "Pause",
    "ScrollLock",
    "Home",
    "End",
    "PageUp",
    "PageDown",
    "Insert",
    "Delete",
    "Up",
    "Down",
    "Left",
    "Right",
    "Space",
    "Enter",
    "Tab",
    "Escape",
    "Backspace",
    "CapsLock",
    "NumLock",
    "Period",
)
_KEY_ALIASES = {
    "esc": "Escape",
    "del": "Delete",
    "ins": "Insert",
    "pgup": "PageUp",
    "pgdn": "PageDown",
    "return": "Enter",
    "break": "Pause",
    "capital": "CapsLock",
    "scroll": "ScrollLock",
    ".": "Period",
    "uparrow": "Up",
    "downarrow": "Down",
    "leftarrow": "Left",
    "rightarrow": "Right",
}
KEYS: frozenset[str] = frozenset(
    [f"F{n}" for n in range(1, 25)]
    + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    + [str(d) for d in range(10)]
    + [f"Numpad{d}" for d in range(10)]
    + list(_NAMED_KEYS)
)
_BY_LOWER = {k.lower(): k for k in KEYS} | {k: v for k, v in _KEY_ALIASES.items()}
_NUMPAD = re.compile(r"^(?:numpad|num|kp)(\d)$")


@dataclass(frozen=True, order=True)
class KeySpec:
    """One key with its modifiers, in canonical form (modifiers in MODIFIERS order)."""

    modifiers: tuple[str, ...]
    key: str

    def __str__(self) -> str:
        return "+".join((*self.modifiers, self.key))


class HotkeyError(ValueError):
    """A key the agent wrote cannot be a global hot key; the message says which key and why."""


@dataclass(frozen=True)
class Action:
    name: str
    default: str
    label: str  # N_() marked; translate where shown


ACTIONS: tuple[Action, ...] = (
    Action("answer", "Ctrl+Shift+F2", N_("Answer the ringing call")),
    Action("hangup", "Ctrl+Shift+F4", N_("Hang up, or decline a ringing call")),
    Action("hold", "Ctrl+Shift+F7", N_("Hold or resume the call")),
    Action("mute", "Ctrl+Shift+F8", N_("Mute or unmute your microphone")),
    Action("repeat", "Ctrl+Shift+F9", N_("Say the last announcement again")),
    Action("status", "Ctrl+Shift+F10", N_("Say the current call and your state")),
    Action("hours", "Ctrl+Shift+F11", N_("My day: hear and see today's hours, calls and overtime")),
)
ACTION_NAMES = tuple(a.name for a in ACTIONS)

# Shortcuts already taken by Windows, the screen readers, input methods or the programs agents
# keep open, with who takes them (shown in the refusal).
TAKEN: dict[str, str] = {
    "Ctrl+Alt+Delete": N_("the Windows security screen"),
    "Ctrl+Shift+Escape": N_("the Windows Task Manager"),
    "Ctrl+Escape": N_("the Windows Start menu"),
    "Alt+Tab": N_("switching windows"),
    "Alt+Shift+Tab": N_("switching windows"),
    "Alt+Escape": N_("switching windows"),
    "Alt+Space": N_("the window menu"),
    "Alt+F4": N_("closing the window"),
    "Ctrl+Alt+N": N_("starting NVDA"),
    "Ctrl+Alt+Up": N_("NVDA's table navigation"),
    "Ctrl+Alt+Down": N_("NVDA's table navigation"),
    "Ctrl+Alt+Left": N_("NVDA's table navigation"),
    "Ctrl+Alt+Right": N_("NVDA's table navigation"),
    "Ctrl+Space": N_("turning the Chinese input method on and off"),
    "Shift+Space": N_("the input method's full-width and half-width switch"),
    "Ctrl+Period": N_("the input method's Chinese and English punctuation switch"),
    "Ctrl+Shift+Space": N_("the input method"),
    "Ctrl+Alt+A": N_("QQ's screenshot"),
    "Ctrl+Alt+Z": N_("QQ's message window"),
    "Ctrl+Alt+W": N_("WeChat's window"),
    "Ctrl+Alt+S": N_("QQ's and WeChat's screenshot"),
    "Ctrl+Alt+X": N_("QQ's screen recording"),
}
# Ctrl+Alt+F1…F12 switch to a text console on Linux desktops (the X server takes them first).
TAKEN.update({f"Ctrl+Alt+F{n}": N_("switching to a text console on Linux") for n in range(1, 13)})
SCREEN_READER_KEYS = frozenset({"Insert", "CapsLock", "NumLock"} | {f"Numpad{d}" for d in range(10)})
TYPING_KEYS = frozenset(
    [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [str(d) for d in range(10)] + ["Space", "Period"]
)


def parse_key(text: str) -> KeySpec:
    """`"ctrl+shift+f2"` → `KeySpec(("Ctrl", "Shift"), "F2")`; HotkeyError naming the key if not a key."""
    parts = [p.strip() for p in text.strip().split("+")]
    if text.strip().endswith("++"):  # "Ctrl++": the plus key itself
        raise HotkeyError(_("{key}: the + key cannot be a hot key.", key=text.strip()))
    if not text.strip() or any(not p for p in parts):
        raise HotkeyError(_("{key}: write a key as Ctrl+Shift+F2 (modifiers, then one key).", key=text))
    *mods, last = parts
    modifiers: set[str] = set()
    if any(p.lower() in ("nvda", "zdsr", "insert", "ins", "capslock") for p in parts):
        raise HotkeyError(_("{key}: the screen reader's key cannot be part of a hot key.", key=text.strip()))
    for m in mods:
        canonical = _MODIFIER_ALIASES.get(m.lower())
        if canonical is None:
            raise HotkeyError(_("{key}: {part} is not Ctrl, Alt, Shift or Win.", key=text.strip(), part=m))
        modifiers.add(canonical)
    if last.lower() in _MODIFIER_ALIASES:
        raise HotkeyError(_("{key}: a modifier needs a key after it.", key=text.strip()))
    if last.lower() in ("nvda", "zdsr"):
        raise HotkeyError(_("{key}: the screen reader's key cannot be part of a hot key.", key=text.strip()))
    numpad = _NUMPAD.match(last.lower())
    key = f"Numpad{numpad.group(1)}" if numpad else _BY_LOWER.get(last.lower())
    if key is None:
        raise HotkeyError(_("{key}: {part} is not a key name.", key=text.strip(), part=last))
    return KeySpec(tuple(m for m in MODIFIERS if m in modifiers), key)


def refusal(spec: KeySpec) -> str | None:
    """Why `spec` cannot be a global hot key, naming it; None when it can."""
    name = str(spec)
    mods = set(spec.modifiers)
    if "Win" in mods:
        return _("{key}: shortcuts with the Windows key belong to Windows.", key=name)
    if spec.key in SCREEN_READER_KEYS:
        return _(
            "{key}: {part} is the screen reader's key (NVDA, 争渡 and others use it).",
            key=name,
            part=spec.key,
        )
    if name in TAKEN:
        return _("{key} is already used for {what}.", key=name, what=_(TAKEN[name]))
    if not mods & {"Ctrl", "Alt"} and not re.fullmatch(r"F(1[3-9]|2[0-4])", spec.key):
        return _(
            "{key}: a global key needs Ctrl or Alt with it, or typing it anywhere would reach the phone.",
            key=name,
        )
    if spec.key in TYPING_KEYS and (mods == {"Ctrl"} or mods == {"Alt"} or mods == {"Alt", "Shift"}):
        return _(
            "{key}: programs use Ctrl or Alt with a letter or digit (copy, paste, menus); add Shift or use an F key.",
            key=name,
        )
    return None


def hotkey_map(chosen: Mapping[str, str] | None = None) -> dict[str, KeySpec]:
    """The defaults with the agent's choices over them (`action -> "Ctrl+Shift+F2"`; "" or "off"
    turns an action's key off). Every problem is reported at once, each naming its key."""
    chosen = dict(chosen or {})
    problems: list[str] = []
    for name in chosen:
        if name not in ACTION_NAMES:
            problems.append(
                _(
                    "{action} is not a hot-key action (use: {actions}).",
                    action=name,
                    actions=", ".join(ACTION_NAMES),
                )
            )
    keys: dict[str, KeySpec] = {}
    owner: dict[KeySpec, str] = {}
    for action in ACTIONS:
        text = chosen.get(action.name, action.default).strip()
        if text.lower() in ("", "off", "none"):
            continue
        try:
            spec = parse_key(text)
        except HotkeyError as exc:
            problems.append(f"{action.name}: {exc}")
            continue
        why = refusal(spec)
        if why is not None:
            problems.append(f"{action.name}: {why}")
            continue
        if spec in owner:
            problems.append(
                _(
                    "{key} is given to both {first} and {second}.",
                    key=str(spec),
                    first=owner[spec],
                    second=action.name,
                )
            )
            continue
        owner[spec] = action.name
        keys[action.name] = spec
    if problems:
        raise HotkeyError("; ".join(problems))
    return keys


def action_label(action: str) -> str:
    """What an action does, in the current language."""
    return next((_(a.label) for a in ACTIONS if a.name == action), action)

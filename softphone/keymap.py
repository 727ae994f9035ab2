"""Every action on a documented single key or Alt shortcut: the one source for the UI and the help
(docs/agents.md lists them for people).

Keys are written as the browser's `KeyboardEvent.key` with modifiers (`Alt+t`, `F2`). Alt shortcuts
pass through screen readers' browse mode (NVDA, Orca), unlike single letters. Keys that browsers
keep for themselves (Alt+D, Alt+E, Alt+F, Ctrl+W, F5, F6, F11, F12) are not used.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.i18n import N_


@dataclass(frozen=True)
class Binding:
    action: str
    keys: tuple[str, ...]
    label: str
    when: str = N_("any time")


BINDINGS: tuple[Binding, ...] = (
    Binding("answer", ("F2", "Alt+a"), N_("Answer the ringing call"), N_("ringing")),
    Binding("hangup", ("F4", "Alt+h"), N_("Hang up (or decline a ringing call)"), N_("on a call")),
    Binding("hold", ("F7", "Alt+o"), N_("Hold or resume the call"), N_("on a call")),
    Binding("mute", ("F8", "Alt+m"), N_("Mute or unmute your microphone"), N_("on a call")),
    Binding(
        "transfer",
        ("Alt+t",),
        N_("Blind transfer: choose colleague, queue or number (1-3) and whom, then Enter"),
        N_("on a call"),
    ),
    Binding(
        "consult",
        ("Alt+c",),
        N_("Consult first: choose colleague, queue or number (1-3) and whom, then Enter"),
        N_("on a call"),
    ),
    Binding("complete", ("Alt+j",), N_("Join: hand the caller to the consulted colleague"), N_("consulting")),
    Binding(
        "dtmf", ("0-9", "*", "#"), N_("Send a key press to the far end"), N_("on a call, call panel focused")
    ),
    Binding("disposition", ("1-9",), N_("Choose the wrap-up result"), N_("wrap-up")),
    Binding("save_wrapup", ("Enter",), N_("Save the wrap-up and become available"), N_("wrap-up")),
    Binding("ready", ("Alt+r",), N_("Become available for calls"), N_("logged in")),
    Binding(
        "preview", ("Alt+n",), N_("Preview: fetch the next contact to call and hear it"), N_("logged in")
    ),
    Binding(
        "preview_call",
        ("F9", "Alt+y"),
        N_("Call the previewed contact (your phone rings first)"),
        N_("a contact is shown"),
    ),
    Binding(
        "preview_skip",
        ("Alt+x",),
        N_("Skip the previewed contact: choose the reason with 1-4, then Enter"),
        N_("a contact is shown"),
    ),
    Binding(
        "callbacks",
        ("Alt+u",),
        N_("My callbacks: hear them and go to the list (Enter on one calls it)"),
        N_("logged in"),
    ),
    Binding("break", ("Alt+b",), N_("Take a break: choose the reason with 1-6, then Enter"), N_("logged in")),
    Binding("logout", ("Alt+l",), N_("Log out of the phone (or back in)"), N_("any time")),
    Binding(
        "hours", ("Alt+w",), N_("My day: hear and see today's hours, calls and overtime"), N_("any time")
    ),
    Binding("status", ("Alt+s",), N_("Say the current status again"), N_("any time")),
    Binding("script", ("Alt+p",), N_("Go to the call script and contact details"), N_("on a call")),
    Binding(
        "form", ("Alt+i",), N_("Go to the call's form (its first question)"), N_("on a call or in wrap-up")
    ),
    Binding("save_form", ("Alt+v",), N_("Save the call's form"), N_("on a call or in wrap-up")),
    Binding("ask_help", ("Alt+z",), N_("Ask a supervisor for help on this call"), N_("on a call")),
    Binding(
        "abusive",
        ("F10",),
        N_("End an abusive call: the caller hears a polite goodbye, you get a rest"),
        N_("on a call"),
    ),
    Binding("quality", ("Alt+q",), N_("Say the call quality"), N_("on a call")),
    Binding(
        "practice",
        ("F3",),
        N_("Practice call: your phone rings with a simulated caller (each press: the next scenario)"),
        N_("no call"),
    ),
    Binding("large_text", ("Alt+g",), N_("Large text on or off"), N_("any time")),
    Binding("contrast", ("Alt+k",), N_("High contrast on or off"), N_("any time")),
    Binding("help", ("F1", "Alt+slash"), N_("List these keys"), N_("any time")),
    Binding(
        "cancel",
        ("Escape",),
        N_("Close the open field or chooser; while consulting, go back to the caller"),
        N_("any time"),
    ),
)

RESERVED = frozenset({"Alt+d", "Alt+e", "Alt+f", "F5", "F6", "F11", "F12", "Ctrl+w", "Ctrl+t", "Ctrl+n"})


def key_table() -> dict[str, str]:
    """Key -> action for the browser (expanded: digit ranges are handled by the page itself)."""
    table: dict[str, str] = {}
    for b in BINDINGS:
        for key in b.keys:
            if key in ("0-9", "1-9", "*", "#", "Enter", "Escape"):
                continue
            table[key] = b.action
    return table


def check_bindings() -> list[str]:
    """Problems with the key map (duplicates, reserved keys); empty when it is sound."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for b in BINDINGS:
        for key in b.keys:
            if key in RESERVED:
                problems.append(f"{key} ({b.action}) is kept by browsers")
            if key in seen and key not in ("Enter",):
                problems.append(f"{key} is bound to both {seen[key]} and {b.action}")
            seen[key] = b.action
    return problems

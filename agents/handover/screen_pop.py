"""The screen pop: what the agent's softphone shows when the call rings, sent as SIP headers.

``X-Warmline-*`` headers are added to the agent's leg through originate variables
(``PJSIP_HEADER(add,…)``); the softphone decodes them. Only what the screen pop needs goes: the
campaign or inbound line, the contact's name and masked number, the attempt, the ticket that lets
this agent's phone fetch the call's script and form from the server, and the list fields the
caller chose for the pop (`CallOrigin.fields`: those the campaign's script uses or its
``screen_pop`` names -- never every column of the list).

A field's header name is ``X-Warmline-Field-<name>`` for a name of ASCII letters, digits and
dashes; any other name (a Chinese column header such as 社区) is sent as
``X-Warmline-Field-u8-<hex of its UTF-8>``, since SIP header names are ASCII tokens. Values are
UTF-8 percent-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from agents.handover.call import CallOrigin


def header_value(text: str) -> str:
    """SIP header values are ASCII: UTF-8 percent-encoded (the softphone decodes them)."""
    return quote(text, safe=" -_.:@*")


def screen_pop_headers(
    origin: CallOrigin,
    *,
    skill: str | None,
    attempt: str,
    language: str | None = None,
    ticket: str | None = None,
) -> dict[str, str]:
    """Originate variables that add the X-Warmline-* headers the softphone's screen pop reads."""
    values: dict[str, str | None] = {
        "Campaign": origin.campaign,
        "Line": origin.line,
        "Ticket": ticket,
        "Phone": origin.phone_masked,
        "Script": origin.script,
        "Attempt": attempt,
        "Skill": skill,
        "Language": language,
        "Field-Name": origin.contact_name,
    }
    values.update(_field_headers(origin.fields))
    return {
        f"PJSIP_HEADER(add,X-Warmline-{name})": header_value(value) for name, value in values.items() if value
    }


def field_header_name(key: str) -> str:
    """`clinic` -> `Field-clinic`; `社区` -> `Field-u8-e7a4bee58cba` (header names are ASCII)."""
    if key and all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in key) and not key.startswith("u8-"):
        return f"Field-{key}"
    return "Field-u8-" + key.encode("utf-8").hex()


def _field_headers(fields: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in fields.items():
        name = str(key).strip()
        if name and name.lower() not in {"name", "phone"} and value not in (None, ""):
            out.setdefault(field_header_name(name), str(value))
    return out

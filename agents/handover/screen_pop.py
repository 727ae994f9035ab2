"""The screen pop: what the agent's softphone shows when the call rings, sent as SIP headers.

``X-Warmline-*`` headers are added to the agent's leg through originate variables
(``PJSIP_HEADER(add,…)``); the softphone decodes them. Only what the script needs goes: the
campaign, the contact's name and masked number, the script, the attempt and the list's fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from agents.handover.call import CallOrigin


def header_value(text: str) -> str:
    """SIP header values are ASCII: UTF-8 percent-encoded (the softphone decodes them)."""
    return quote(text, safe=" -_.:@*")


def screen_pop_headers(
    origin: CallOrigin, *, skill: str | None, attempt: str, language: str | None = None
) -> dict[str, str]:
    """Originate variables that add the X-Warmline-* headers the softphone's screen pop reads."""
    values: dict[str, str | None] = {
        "Campaign": origin.campaign,
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


def _field_headers(fields: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in fields.items():
        safe = "".join(ch for ch in str(key) if ch.isascii() and (ch.isalnum() or ch == "-"))
        if safe and safe.lower() not in {"name", "phone"} and value not in (None, ""):
            out.setdefault(f"Field-{safe}", str(value))
    return out

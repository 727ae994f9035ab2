"""Personal data on the agent's screen: phone numbers masked (138****8000), never shown in full."""

from __future__ import annotations

import re
from urllib.parse import unquote

_DIGITS = re.compile(r"\d")
_PHONE_RUN = re.compile(r"\+?\d[\d\s\-()]{5,}\d")
PHONE_FIELDS = frozenset({"phone", "number", "mobile", "tel", "telephone", "callerid"})


def mask_phone(number: str) -> str:
    """`13800138000` -> `138****8000`; `+8613800138000` -> `+86138****8000`.

    Keeps at most the first three and the last four digits of the national part and never more
    than half of the digits; short numbers keep only their last two digits.
    """
    raw = number.strip()
    plus = raw.startswith("+")
    digits = "".join(_DIGITS.findall(raw))
    if not digits:
        return raw
    country = ""
    if plus and digits.startswith("86") and len(digits) > 11:
        country, digits = "86", digits[2:]
    n = len(digits)
    if n >= 10:
        head, tail = 3, 4
    elif n >= 7:
        head, tail = 2, 3
    else:
        head, tail = 0, min(2, n // 2)
    masked = digits[:head] + "*" * (n - head - tail) + (digits[n - tail :] if tail else "")
    return ("+" if plus else "") + country + masked


def mask_phones_in(text: str) -> str:
    """Mask every phone-number-looking run inside free text (a caller id, a display name)."""
    return _PHONE_RUN.sub(lambda m: mask_phone(m.group(0)), text)


def decode_header(value: str) -> str:
    """SIP header values carry UTF-8 percent-encoded (headers are ASCII on the wire)."""
    return unquote(value, encoding="utf-8", errors="replace")


def screen_fields(headers: dict[str, str]) -> dict[str, str]:
    """Contact fields for the screen pop: `field-<name>` and `phone` headers, decoded, masked."""
    fields: dict[str, str] = {}
    for name, value in headers.items():
        key = name.removeprefix("field-") if name.startswith("field-") else name
        if not (name.startswith("field-") or name in PHONE_FIELDS):
            continue
        text = decode_header(value)
        fields[key] = mask_phone(text) if key in PHONE_FIELDS else mask_phones_in(text)
    return fields

"""Personal data on the agent's screen: phone numbers masked (138****8000, see core.phones), never
shown in full."""

from __future__ import annotations

from urllib.parse import unquote

from core.phones import mask, mask_in_text

PHONE_FIELDS = frozenset({"phone", "number", "mobile", "tel", "telephone", "callerid"})


def decode_header(value: str) -> str:
    """SIP header values carry UTF-8 percent-encoded (headers are ASCII on the wire)."""
    return unquote(value, encoding="utf-8", errors="replace")


def field_name(header: str) -> str:
    """A field header's name without `field-`; `field-u8-<hex>` carries a UTF-8 name (社区)."""
    key = header.removeprefix("field-")
    if key.startswith("u8-"):
        try:
            return bytes.fromhex(key[3:]).decode("utf-8")
        except ValueError:
            return key
    return key


def screen_fields(headers: dict[str, str]) -> dict[str, str]:
    """Contact fields for the screen pop: `field-<name>` and `phone` headers, decoded, masked."""
    fields: dict[str, str] = {}
    for name, value in headers.items():
        if not (name.startswith("field-") or name in PHONE_FIELDS):
            continue
        key = field_name(name) if name.startswith("field-") else name
        text = decode_header(value)
        # The server sends numbers masked already (138****8000): masked again they would shrink.
        masked = key in PHONE_FIELDS and "*" not in text
        fields[key] = mask(text) if masked else mask_in_text(text)
    return fields

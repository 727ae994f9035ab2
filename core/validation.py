"""Pydantic's validation errors in the reader's language.

Pydantic words its own errors in English ("String should have at most 64 characters"). Every place
that shows them to a person -- the API's 422 for a malformed body, a campaign's or an inbound
line's YAML, an IVR flow -- passes each error through :func:`error_message`, which says it again
from the catalogue by the error's ``type`` (a stable code, kept beside the message for programs)
and its context (the limits). A validator's own ``ValueError`` is already in the current locale
(it raised ``_("...")``), so it is shown as it is. An error type this table does not know is named
by its code rather than shown in English.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.i18n import N_, _

MESSAGES: dict[str, str] = {
    "missing": N_("This is required."),
    "extra_forbidden": N_("This setting is not known."),
    "string_type": N_("Text is expected here."),
    "string_too_short": N_("At least {min_length} characters."),
    "string_too_long": N_("At most {max_length} characters."),
    "string_pattern_mismatch": N_("Not in the expected form ({pattern})."),
    "int_type": N_("A whole number is expected here."),
    "int_parsing": N_("A whole number is expected here."),
    "int_from_float": N_("A whole number is expected here."),
    "float_type": N_("A number is expected here."),
    "float_parsing": N_("A number is expected here."),
    "finite_number": N_("A finite number is expected here."),
    "bool_type": N_("true or false is expected here."),
    "bool_parsing": N_("true or false is expected here."),
    "greater_than": N_("Must be greater than {gt}."),
    "greater_than_equal": N_("Must be at least {ge}."),
    "less_than": N_("Must be less than {lt}."),
    "less_than_equal": N_("Must be at most {le}."),
    "multiple_of": N_("Must be a multiple of {multiple_of}."),
    "literal_error": N_("Must be one of: {expected}."),
    "enum": N_("Must be one of: {expected}."),
    "datetime_type": N_("A date and time is expected, e.g. 2026-12-03T15:00."),
    "datetime_parsing": N_("A date and time is expected, e.g. 2026-12-03T15:00."),
    "datetime_from_date_parsing": N_("A date and time is expected, e.g. 2026-12-03T15:00."),
    "date_type": N_("A date is expected, e.g. 2026-12-03."),
    "date_parsing": N_("A date is expected, e.g. 2026-12-03."),
    "date_from_datetime_parsing": N_("A date is expected, e.g. 2026-12-03."),
    "date_from_datetime_inexact": N_("A date is expected, e.g. 2026-12-03."),
    "time_type": N_("A time of day is expected, e.g. 15:00."),
    "time_parsing": N_("A time of day is expected, e.g. 15:00."),
    "list_type": N_("A list is expected here."),
    "tuple_type": N_("A list is expected here."),
    "set_type": N_("A list is expected here."),
    "dict_type": N_("A mapping (key: value) is expected here."),
    "model_type": N_("An object (key: value) is expected here."),
    "model_attributes_type": N_("An object (key: value) is expected here."),
    "too_short": N_("At least {min_length} items."),
    "too_long": N_("At most {max_length} items."),
    "json_invalid": N_("The body is not valid JSON."),
    "json_type": N_("The body is not valid JSON."),
    "uuid_type": N_("An id (UUID) is expected here."),
    "uuid_parsing": N_("An id (UUID) is expected here."),
    "url_type": N_("An address (URL) is expected here."),
    "url_parsing": N_("An address (URL) is expected here."),
    "none_required": N_("Nothing is expected here."),
    "bytes_too_long": N_("At most {max_length} bytes."),
    "union_tag_invalid": N_("Must be one of: {expected_tags}."),
    "timezone_aware": N_("A time with its zone is expected here."),
    "timezone_naive": N_("A time without a zone is expected here."),
}
OWN = ("value_error", "assertion_error")  # a validator's own words, already in the reader's language
UNKNOWN = N_("This value is not accepted ({code}).")


def error_message(error: Mapping[str, Any]) -> str:
    """One pydantic error (``ValidationError.errors()`` item) in the current locale."""
    kind = str(error.get("type", ""))
    msg = str(error.get("msg", ""))
    if kind in OWN:
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msgid = MESSAGES.get(kind)
    if msgid is None:
        return _(UNKNOWN, code=kind or "invalid")
    ctx = {str(k): v for k, v in (error.get("ctx") or {}).items()}
    try:
        return _(msgid, **ctx)
    except (KeyError, IndexError, ValueError):
        return _(UNKNOWN, code=kind)


def localised_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Errors as an API returns them: ``loc`` and ``type`` kept, ``msg`` in the reader's language,
    ``code`` the type again (stable, for programs); ``input`` and ``ctx`` dropped (they may echo a
    personal number back, or hold what JSON cannot)."""
    out = []
    for error in errors:
        out.append(
            {
                "loc": list(error.get("loc", ())),
                "msg": error_message(error),
                "type": error.get("type"),
                "code": error.get("type"),
            }
        )
    return out


def where_text(line: int | None, where: str, message: str) -> str:
    """A problem in a file people write, at its line: ``line 12: retry.busy: …`` (``第12行：…``)."""
    if line:
        return _("line {line}: {where}: {message}", line=line, where=where, message=message)
    return _("{where}: {message}", where=where, message=message)

"""Phone numbers as people without a need for them see them: ``138****8000``.

One house format everywhere (logs, screens, exports, bus messages, the softphone):

- Chinese numbers in their national form: a mobile ``+8613800138000`` is ``138****8000``; a
  landline ``+861065521234`` gets its trunk 0 back, ``010****1234``.
- Numbers of other countries keep their ``+`` and are masked on their international digits:
  ``+16502530000`` is ``+165****0000``.
- Shorter numbers show less: 7 to 9 digits keep the first 2 and last 2 (``65****34``); 3 to 6
  digits only the last 2 (``**01``); 1 or 2 digits none.

The stars are always four for the longer forms, so the mask does not tell how long the number is.
Pure functions over text (no ``phonenumbers``): the softphone and the log formatter use them too.
"""

from __future__ import annotations

import re
import unicodedata

_STARS = "****"

# A run that reads as one phone number inside free text: 7 or more digits (ASCII or full-width),
# single spaces or dashes between them, a leading + and an area code in brackets allowed. A run
# ends at anything else, so "5678 (2 kids)" stops before the bracket.
_DIGIT = "[0-9０-９]"
_PHONE_RUN = re.compile(
    rf"(?<![0-9０-９])(?:[+＋])?(?:[(（]{_DIGIT}{{2,4}}[)）] ?)?{_DIGIT}(?:[ \-\u3000]?{_DIGIT}){{5,}}(?![0-9０-９])"
)
_MIN_RUN_DIGITS = 7
_ISO_DATE = re.compile(r"(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")


def _digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(c)) for c in text if unicodedata.decimal(c, None) is not None)


def _national_or_international(text: str) -> tuple[bool, str]:
    """(international?, digits): Chinese numbers in national form, others after their ``+``."""
    raw = text.strip()
    digits = _digits(raw)
    plus = raw.startswith(("+", "＋"))
    if not plus and digits.startswith("00"):
        plus, digits = True, digits[2:]
    elif not plus and digits.startswith("86") and len(digits) == 13 and digits[2] == "1":
        return False, digits[2:]  # 8613800138000: a mobile written with its country code, no +
    if not plus:
        return False, digits
    if digits.startswith("86") and len(digits) > 4:
        rest = digits[2:]
        return False, rest if rest.startswith("1") and len(rest) == 11 else "0" + rest.lstrip("0")
    return True, digits


def _hide(digits: str) -> str:
    n = len(digits)
    if n >= 10:
        return digits[:3] + _STARS + digits[-4:]
    if n >= 7:
        return digits[:2] + _STARS + digits[-2:]
    if n >= 3:
        return "*" * (n - 2) + digits[-2:]
    return "*" * n


def mask(number: str | None) -> str:
    """One number (E.164, or as written: spaces, dashes, full-width digits) in the house format.

    Text without a digit ("anonymous", "") is returned as it is: there is nothing to hide.
    """
    if not number:
        return ""
    international, digits = _national_or_international(number)
    if not digits:
        return number.strip()
    return ("+" if international else "") + _hide(digits)


def mask_in_text(text: str) -> str:
    """Every run of 7 or more digits in free text masked as :func:`mask` masks a number (a rejected
    list cell, a caller id, a display name); shorter runs (a house number, a count) stay."""

    def one(m: re.Match[str]) -> str:
        run = m.group(0)
        if _ISO_DATE.fullmatch(run):  # 2026-03-01 (a form's date answer) is no phone number
            return run
        return mask(run) if len(_digits(run)) >= _MIN_RUN_DIGITS else run

    return _PHONE_RUN.sub(one, text)

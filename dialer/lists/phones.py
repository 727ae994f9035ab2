"""Phone numbers to E.164, or a reason why a cell is not one.

A cell is accepted only when the whole cell is a phone number, written any of the ways people
write them: full-width digits, spaces, dashes, dots and brackets, `+86`/`0086`/`86` prefixes, a
trunk `0` before an area code, an extension after 转/分机/ext. A cell that merely *contains* digits
— a formula, a URL, "call 138…", two numbers in one cell — is rejected, never mined for digits:
calling a number guessed out of text reaches the wrong person.

Speed: plain Chinese mobiles and landlines (nearly every row of a real list) are checked against
the `phonenumbers` metadata patterns directly, which is what `phonenumbers.is_valid_number` does
for them, at regex speed; anything else goes through `phonenumbers.parse`. Masking a number for
people is `core.phones`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from core.i18n import _

# Reason codes (also used by the report).
MISSING = "missing"
INVALID = "invalid"
FORMULA = "formula"
SCIENTIFIC = "scientific_notation"
NOT_ALLOWED_COUNTRY = "not_allowed_country"


class Phone(NamedTuple):
    """The outcome for one cell: an E.164 number, or a reason code with a detail for a person."""

    e164: str | None
    reason: str | None = None
    detail: str = ""
    region: str | None = None
    extension: str | None = None


def _meta(region: str) -> phonenumbers.PhoneMetadata:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert meta is not None
    return meta


def _desc(desc: phonenumbers.PhoneNumberDesc | None) -> tuple[re.Pattern[str] | None, frozenset[int]]:
    if desc is None or not desc.national_number_pattern:
        return None, frozenset()
    return re.compile(desc.national_number_pattern), frozenset(desc.possible_length or ())


_CN = _meta("CN")
_mobile, _mobile_lengths = _desc(_CN.mobile)
_fixed, _fixed_lengths = _desc(_CN.fixed_line)
assert _mobile is not None and _fixed is not None
_CN_MOBILE: re.Pattern[str] = _mobile
_CN_FIXED: re.Pattern[str] = _fixed
_CN_FIXED_LENGTHS = _fixed_lengths or _desc(_CN.general_desc)[1]
# Numbers the fast path must leave to phonenumbers because their type matters (premium rate etc.).
_CN_SPECIAL = [
    p
    for p, _ in map(
        _desc, (_CN.premium_rate, _CN.shared_cost, _CN.toll_free, _CN.voip, _CN.uan, _CN.personal_number)
    )
    if p is not None
]

# Full-width and typographic variants to ASCII; separators to spaces.
_TRANSLATE = str.maketrans(
    {
        **{chr(0xFF10 + i): str(i) for i in range(10)},
        "＋": "+",
        "－": "-",
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "–": "-",
        "—": "-",
        "−": "-",
        "（": "(",
        "）": ")",
        "．": ".",
        "／": "/",
        "，": ",",
        "；": ";",
        "：": ":",
        "＃": "#",
        "\u3000": " ",
        "\u00a0": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\t": " ",
        "\ufeff": "",
        "\u200b": "",
    }
)
_SEPARATORS = re.compile(r"[\s\-.()\[\]]+")
_PLAIN = re.compile(r"\+?\d+")
_SIMPLE = re.compile(r"\+?[0-9][0-9 \-]*")
_SIMPLE_SEPARATORS = re.compile(r"[ \-]+")
_CN_PREFIXED = re.compile(r"(?:\+86|0086|86)(1\d{10})")
_FORMULA = re.compile(r"[=@]|[+\-]\s*[A-Za-z_]")
_URL = re.compile(r"://|^(?:tel|sip|sips|callto|mailto|http|https|weixin):|www\.|\.(?:com|cn|net|org)\b")
_SCIENTIFIC = re.compile(r"(\d)(?:\.(\d+))?e\+?(\d{1,2})")
_DECIMAL_ZERO = re.compile(r"(\d+)\.0+")
_EXTENSION = re.compile(r"^(.*?\d[\d\s\-.()]*?)\s*(?:转|分机|ext\.?|x|#)\s*(\d{1,6})$")
_MULTIPLE = re.compile(r"[/,;、|]|\d\s{2,}\d")


def fast_cn_mobile(cell: str) -> str | None:
    """E.164 for an 11-digit Chinese mobile written plainly, else None (take the full path)."""
    if len(cell) == 11 and cell.isascii() and cell.isdigit() and _CN_MOBILE.fullmatch(cell):
        return "+86" + cell
    return None


def normalise(cell: str, region: str = "CN", allowed: frozenset[str] | None = frozenset({"CN"})) -> Phone:
    """Normalise one cell; `region` is the country of numbers written without a country code,
    `allowed` the countries the campaign calls (None: any)."""
    if (
        len(cell) == 11
        and region == "CN"
        and cell.isascii()
        and cell.isdigit()
        and _CN_MOBILE.fullmatch(cell)
        and (allowed is None or "CN" in allowed)
    ):
        return Phone("+86" + cell, region="CN")
    s = cell.strip()
    if not s:
        return Phone(None, MISSING, _("no number in the phone column"))
    if _FORMULA.match(s):
        return Phone(None, FORMULA, _("a formula, not a number: the cell was not imported"))
    if not s.isascii():
        s = s.translate(_TRANSLATE).strip()
    if _SIMPLE.fullmatch(s):  # digits, spaces, dashes, a leading +: most cells that are not plain
        return _digits(_SIMPLE_SEPARATORS.sub("", s), region, allowed, None)
    s = s.lower()
    if s.startswith("'"):  # typed as '13800138000 to keep a spreadsheet from turning it into a number
        s = s[1:].lstrip()
    if _URL.search(s):
        return Phone(None, INVALID, _("a link or address, not a phone number"))
    if "e" in s:
        sci = _SCIENTIFIC.fullmatch(s.replace(" ", ""))
        if sci:
            return _from_scientific(sci, region, allowed)
    decimal = _DECIMAL_ZERO.fullmatch(s)
    if decimal:  # 13800138000.0: a number column exported from a float
        s = decimal.group(1)
    extension = None
    ext = _EXTENSION.match(s)
    if ext and not _PLAIN.fullmatch(s):
        s, extension = ext.group(1), ext.group(2)
    compact = _SEPARATORS.sub("", s)
    if not _PLAIN.fullmatch(compact):
        if _MULTIPLE.search(s) and sum(c.isdigit() for c in s) >= 14:
            return Phone(None, INVALID, _("more than one number in the cell: put one number per row"))
        if any(c.isdigit() for c in s):
            return Phone(
                None, INVALID, _("text with digits, not a phone number: digits are never guessed from text")
            )
        return Phone(None, INVALID, _("not a phone number"))
    return _digits(compact, region, allowed, extension)


def _from_scientific(m: re.Match[str], region: str, allowed: frozenset[str] | None) -> Phone:
    """1.3800138E+10 from a spreadsheet shown in scientific notation: take it only when no digit
    was lost (the mantissa carries every digit), since a rounded number reaches someone else."""
    lead, frac, exp = m.group(1), m.group(2) or "", int(m.group(3))
    if len(frac) > exp:
        return Phone(None, INVALID, _("a decimal number, not a phone number"))
    digits = lead + frac + "0" * (exp - len(frac))
    if len(frac) < exp:
        return Phone(
            None,
            SCIENTIFIC,
            _(
                "scientific notation lost digits (the spreadsheet showed it rounded): format the column as text"
                " and export again"
            ),
        )
    return _digits(digits, region, allowed, None)


def _digits(compact: str, region: str, allowed: frozenset[str] | None, extension: str | None) -> Phone:
    n = len(compact) - compact.startswith("+")
    if n < 5:
        return Phone(None, INVALID, _("too short for a phone number ({n} digits)", n=n))
    if n > 17:
        return Phone(None, INVALID, _("too long for a phone number ({n} digits)", n=n))
    if region == "CN":
        fast = _fast_cn(compact)
        if fast is not None:
            return _allowed(Phone(fast, region="CN", extension=extension), allowed)
    if allowed is not None and compact.startswith(("+", "00")):
        refused = _foreign_refused(compact.lstrip("+0") if compact.startswith("+") else compact[2:], allowed)
        if refused is not None:
            return refused
    try:
        number = phonenumbers.parse(compact, region)
    except NumberParseException:
        return Phone(None, INVALID, _("not a phone number"))
    number_region = phonenumbers.region_code_for_number(number)
    if not phonenumbers.is_valid_number(number):
        where = number_region or region
        if n <= 8 and region == "CN" and not compact.startswith(("+", "00")):
            return Phone(
                None, INVALID, _("not a valid {region} number (a landline needs its area code)", region=where)
            )
        return Phone(None, INVALID, _("not a valid {region} number", region=where))
    if phonenumbers.number_type(number) == PhoneNumberType.PREMIUM_RATE:
        return Phone(None, INVALID, _("a premium-rate number: never dialled"))
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _allowed(Phone(e164, region=number_region, extension=extension or number.extension), allowed)


def _foreign_refused(digits: str, allowed: frozenset[str]) -> Phone | None:
    """A number with a country code none of whose countries the campaign calls: refused without
    a full parse (phonenumbers needs ~200 µs to place a +1 number among the NANP countries)."""
    for length in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length] or 0))
        if regions:
            if allowed.intersection(regions):
                return None
            regions_text = f"{regions[0]}{', …' if len(regions) > 1 else ''}"
            said = _(
                "a +{code} number ({regions}); this campaign calls {countries}",
                code=digits[:length],
                regions=regions_text,
                countries=_countries(allowed),
            )
            return Phone(
                None,
                NOT_ALLOWED_COUNTRY,
                said,
                region=regions[0],
            )
    return None


def _fast_cn(compact: str) -> str | None:
    """Chinese mobiles and landlines in any of their usual prefix forms, by the metadata patterns."""
    m = _CN_PREFIXED.fullmatch(compact)
    if m:
        return "+86" + m.group(1) if _CN_MOBILE.fullmatch(m.group(1)) else None
    if compact.startswith(("+86", "0086")):  # a landline with the country code: no trunk 0
        nsn = compact[3:] if compact.startswith("+") else compact[4:]
        return "+86" + nsn if _cn_landline(nsn) else None
    if compact.startswith("+"):
        return None
    nsn = compact[1:] if compact.startswith("0") and not compact.startswith("00") else compact
    if nsn.startswith("1") and len(nsn) == 11:
        return "+86" + nsn if _CN_MOBILE.fullmatch(nsn) else None
    if compact.startswith("0") and _cn_landline(nsn):
        return "+86" + nsn
    return None


def _cn_landline(nsn: str) -> bool:
    return (
        len(nsn) in _CN_FIXED_LENGTHS
        and _CN_FIXED.fullmatch(nsn) is not None
        and not any(p.fullmatch(nsn) for p in _CN_SPECIAL)
    )


def _allowed(phone: Phone, allowed: frozenset[str] | None) -> Phone:
    if allowed is None or phone.region in allowed:
        return phone
    return Phone(
        None,
        NOT_ALLOWED_COUNTRY,
        _(
            "a {where} number; this campaign calls {countries}",
            where=phone.region,
            countries=_countries(allowed),
        ),
        region=phone.region,
    )


@lru_cache(maxsize=4096)
def timezone_for(e164: str) -> str | None:
    """The number's time zone when it has exactly one (a foreign mobile), else None."""
    from phonenumbers import timezone as pn_timezone

    try:
        zones = pn_timezone.time_zones_for_number(phonenumbers.parse(e164))
    except NumberParseException:
        return None
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else None


def _countries(allowed: frozenset[str]) -> str:
    return ", ".join(sorted(allowed)) or _("no country")

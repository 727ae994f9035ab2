"""Figures as a person reads or hears them, in the current locale (`core.i18n`).

- Durations read naturally: "3小时40分" / "3 h 40 min" (whole minutes; seconds only under one).
- Dates and times are always in the centre's time zone (`Settings.timezone`, Asia/Shanghai by
  default), never the server's or UTC, on the 24-hour clock: "2026年11月25日 14:05" / "Nov 25, 2026
  14:05". Datetimes from the database are aware (UTC); a naive one is refused rather than guessed.
- Numbers with the locale's grouping ("12,345").
- A masked phone number spoken digit by digit: a screen reader given "138****8000" says "一百三十八
  星星星星 八千" (NVDA, 争渡), which nobody can note down; `spoken_phone` gives "1 3 8，隐藏4位，8 0 0 0".
"""

from __future__ import annotations

import re
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from babel.dates import format_date, get_day_names
from babel.numbers import format_decimal

from core.i18n import N_, _, current_locale

# Babel's own locale names for the supported locales.
_BABEL = {"zh_CN": "zh_Hans_CN", "en": "en"}
_DATE_FORMAT = {"zh_CN": "long", "en": "medium"}  # 2026年11月25日 / Nov 25, 2026

HOURS_MINUTES = N_("{h} h {m} min")
HOURS = N_("{h} h")
MINUTES = N_("{m} min")
SECONDS = N_("{s} s")
# Before a noun ("your 4-hour day"): Chinese needs no other form, English does.
HOURS_MINUTES_ADJ = N_("{h}-hour {m}-minute")
HOURS_ADJ = N_("{h}-hour")
MINUTES_ADJ = N_("{m}-minute")


def zone(name: str | tzinfo) -> tzinfo:
    """The centre's zone from its setting (a name such as Asia/Shanghai)."""
    return ZoneInfo(name) if isinstance(name, str) else name


def duration(seconds: float, *, adjective: bool = False) -> str:
    """A length of time as said aloud: whole hours and minutes; seconds only when under a minute
    (and not as an adjective). Never negative."""
    total = max(int(seconds), 0)
    hours, minutes = divmod(total // 60, 60)
    if not adjective and total < 60 and total:
        return _(SECONDS, s=total)
    if hours and minutes:
        return _(HOURS_MINUTES_ADJ if adjective else HOURS_MINUTES, h=hours, m=minutes)
    if hours:
        return _(HOURS_ADJ if adjective else HOURS, h=hours)
    return _(MINUTES_ADJ if adjective else MINUTES, m=minutes)


def _aware(moment: datetime | str) -> datetime:
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: its zone is unknown")
    return value


def local(moment: datetime | str, tz: str | tzinfo) -> datetime:
    """The moment on the centre's clock."""
    return _aware(moment).astimezone(zone(tz))


def time_of_day(moment: datetime | str, tz: str | tzinfo, *, seconds: bool = False) -> str:
    """'14:05' (24-hour clock, the centre's zone)."""
    return local(moment, tz).strftime("%H:%M:%S" if seconds else "%H:%M")


def day(value: date | datetime | str, tz: str | tzinfo | None = None) -> str:
    """'2026年11月25日' / 'Nov 25, 2026'; a datetime is first put on the centre's clock."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        if tz is None:
            raise ValueError("a datetime needs the centre's zone to say which day it is")
        value = local(value, tz).date()
    loc = current_locale()
    return format_date(value, _DATE_FORMAT.get(loc, "medium"), locale=_BABEL.get(loc, "en"))


def date_time(moment: datetime | str, tz: str | tzinfo) -> str:
    """'2026年11月25日 14:05' / 'Nov 25, 2026 14:05' on the centre's clock."""
    return f"{day(moment, tz)} {time_of_day(moment, tz)}"


def weekday(index: int) -> str:
    """Monday is 0: '星期一' / 'Monday'."""
    names = get_day_names("wide", locale=_BABEL.get(current_locale(), "en"))
    return str(names[index])


def number(value: float) -> str:
    """'12,345' / '3.5' with the locale's separators."""
    return format_decimal(value, locale=_BABEL.get(current_locale(), "en"))


_MASKED = re.compile(r"(\*+)|([0-9])|(\+)")


def spoken_phone(masked: str) -> str:
    """A masked number as a screen reader should say it: digit by digit, the hidden part named once.

    '138****8000' → '1 3 8，隐藏4位，8 0 0 0' / '1 3 8, 4 digits hidden, 8 0 0 0'.
    """
    parts: list[str] = []
    run: list[str] = []
    for stars, digit, plus in _MASKED.findall(masked):
        if digit:
            run.append(digit)
            continue
        if run:
            parts.append(" ".join(run))
            run = []
        if stars:
            parts.append(_("{n} digits hidden", n=len(stars)))
        elif plus:
            parts.append(_("plus"))
    if run:
        parts.append(" ".join(run))
    # TRANSLATORS: between the spoken parts of a phone number ("1 3 8, 4 digits hidden, 8 0 0 0").
    return _(", ").join(parts)


def clock(seconds: float) -> str:
    """A position in a recording: '1:05' (minutes:seconds), the same in every language."""
    m, s = divmod(max(round(seconds), 0), 60)
    return f"{m}:{s:02d}"

"""The work-hour ledger: time per state from a list of state transitions. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from core.formats import duration
from core.i18n import N_, _, name_of

# Which states count towards which total. Every state but logged_out counts as logged in.
TALKING = "on_call"
WRAP_UP = "wrap_up"
BREAK = "break"
AVAILABLE = "available"
LOGGED_OUT = "logged_out"

# Each state as a person reads and hears it (translate with `_()`).
STATE_NAMES = {
    LOGGED_OUT: N_("logged out"),
    AVAILABLE: N_("available"),
    TALKING: N_("on call"),
    WRAP_UP: N_("in wrap-up"),
    BREAK: N_("on break"),
}


def state_name(state: str) -> str:
    """'on call' / '通话中'; an unknown state as it is, underscores as spaces."""
    return name_of(STATE_NAMES, state)


@dataclass(frozen=True)
class Transition:
    state: str
    since: datetime


class Totals(BaseModel):
    logged_in_s: int = 0
    available_s: int = 0
    talking_s: int = 0
    wrap_up_s: int = 0
    break_s: int = 0


def totals(transitions: Iterable[Transition], start: datetime, end: datetime) -> Totals:
    """Seconds per state within [start, end). Transitions are sorted by time; the one in force at
    `start` must be included (it may be earlier than `start`)."""
    acc = {"logged_in_s": 0.0, "available_s": 0.0, "talking_s": 0.0, "wrap_up_s": 0.0, "break_s": 0.0}
    items = sorted(transitions, key=lambda t: t.since)
    ends: list[Transition | None] = [*items[1:], None] if items else []
    for here, nxt in zip(items, ends, strict=True):
        lo = max(here.since, start)
        hi = min(nxt.since if nxt else end, end)
        seconds = (hi - lo).total_seconds()
        if seconds <= 0 or here.state == LOGGED_OUT:
            continue
        acc["logged_in_s"] += seconds
        key = {AVAILABLE: "available_s", TALKING: "talking_s", WRAP_UP: "wrap_up_s", BREAK: "break_s"}.get(
            here.state
        )
        if key:
            acc[key] += seconds
    return Totals(**{k: round(v) for k, v in acc.items()})


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tz)
    return start, datetime.combine(day + timedelta(days=1), time.min, tz)


def week_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    monday = day - timedelta(days=day.weekday())
    return datetime.combine(monday, time.min, tz), datetime.combine(monday + timedelta(days=7), time.min, tz)


def spoken_duration(seconds: int) -> str:
    """Whole hours and minutes as said aloud: '3小时40分' / '3 h 40 min' (core.formats)."""
    return duration((max(seconds, 0) // 60) * 60)


def spoken_summary(today: Totals, target_minutes: int) -> str:
    """What the agent hears: '今天已工作3小时40分，距每天4小时的目标还差20分钟' /
    'today 3 h 40 min; 20 min to your 4-hour day'."""
    # Whole minutes on both sides, so the two figures always add up to the target.
    worked_min = today.logged_in_s // 60
    worked = spoken_duration(worked_min * 60)
    target = duration(target_minutes * 60, adjective=True)
    if worked_min < target_minutes:
        left = spoken_duration((target_minutes - worked_min) * 60)
        return _("today {worked}; {left} to your {target} day", worked=worked, left=left, target=target)
    return _("today {worked}; your {target} day is done", worked=worked, target=target)

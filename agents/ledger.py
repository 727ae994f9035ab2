"""The work-hour ledger: time per state from a list of state transitions. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

# Which states count towards which total. Every state but logged_out counts as logged in.
TALKING = "on_call"
WRAP_UP = "wrap_up"
BREAK = "break"
AVAILABLE = "available"
LOGGED_OUT = "logged_out"


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
    hours, minutes = divmod(max(seconds, 0) // 60, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def spoken_summary(today: Totals, target_minutes: int) -> str:
    """What the agent hears: 'today 3 h 40 min; 20 min to your 4-hour day'."""
    # Whole minutes on both sides, so the two figures always add up to the target.
    worked_min = today.logged_in_s // 60
    text = f"today {spoken_duration(worked_min * 60)}"
    target = spoken_duration(target_minutes * 60).replace(" h", "-hour").replace(" min", "-minute")
    if worked_min < target_minutes:
        return f"{text}; {spoken_duration((target_minutes - worked_min) * 60)} to your {target} day"
    return f"{text}; your {target} day is done"

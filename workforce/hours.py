"""The hours the law counts: shifts, night hours and overtime from the agents' state ledger.

Pure functions over :class:`agents.ledger.Transition` lists, in the centre's time zone:

- A *shift* is a continuous logged-in span; a logged-out gap shorter than ``shift_gap`` (a lost
  connection, a quick restart) does not end it, so a night shift never splits at midnight. A shift
  belongs to the local date it starts on.
- *Worked* time is logged-in time except the ``break`` state; *talk* time is ``on_call``; *calls* are
  the times the agent went on a call.
- *Night* time is worked time inside the night span (default 22:00-06:00 local, crossing midnight).
- *Overtime* (standard scheme): worked time beyond ``day_limit`` in a shift-day, then, of what is
  left, beyond ``week_limit`` in an ISO week (Monday-Sunday, local). Comprehensive scheme: only the
  worked time of the whole period beyond ``period_limit``. *Normal* = worked - overtime; night hours
  are counted whether they are normal or overtime (they are paid on top).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from agents.ledger import BREAK, LOGGED_OUT, TALKING, Transition

Scheme = Literal["standard", "comprehensive"]


@dataclass(frozen=True)
class HoursRules:
    tz: ZoneInfo
    night_start: time = time(22, 0)
    night_end: time = time(6, 0)
    shift_gap: timedelta = timedelta(minutes=30)
    day_limit: timedelta = timedelta(hours=8)
    week_limit: timedelta = timedelta(hours=40)
    scheme: Scheme = "standard"
    period_limit: timedelta = timedelta(hours=166, minutes=36)  # 20.83 days x 8 h, a month


@dataclass
class Shift:
    start: datetime
    end: datetime
    worked_s: float = 0.0
    talk_s: float = 0.0
    night_s: float = 0.0
    calls: int = 0
    spans: list[tuple[datetime, datetime, str]] = field(default_factory=list)

    def day(self, tz: ZoneInfo) -> date:
        return self.start.astimezone(tz).date()


@dataclass(frozen=True)
class Hours:
    """One agent's figures for a period, in seconds (rounded to whole seconds)."""

    shifts: int
    calls: int
    talk_s: int
    worked_s: int
    normal_s: int
    night_s: int
    overtime_s: int
    short_days: int  # shift-days under the agent's daily target


def _spans(transitions: Iterable[Transition], until: datetime) -> list[tuple[datetime, datetime, str]]:
    """(start, end, state) for every logged-in stretch, the last one closed at `until`."""
    items = sorted(transitions, key=lambda t: t.since)
    out: list[tuple[datetime, datetime, str]] = []
    if not items:  # an agent without a state in the window worked no hours
        return out
    for here, nxt in zip(items, [*items[1:], None], strict=True):
        end = min(nxt.since if nxt else until, until)
        if here.state != LOGGED_OUT and end > here.since:
            out.append((here.since, end, here.state))
    return out


def night_seconds(start: datetime, end: datetime, rules: HoursRules) -> float:
    """Seconds of [start, end) inside the night span, on every local night it touches."""
    total = 0.0
    first = start.astimezone(rules.tz).date() - timedelta(days=1)
    last = end.astimezone(rules.tz).date()
    day = first
    while day <= last:
        lo = datetime.combine(day, rules.night_start, rules.tz)
        hi_day = day + timedelta(days=1) if rules.night_end <= rules.night_start else day
        hi = datetime.combine(hi_day, rules.night_end, rules.tz)
        total += max(0.0, (min(end, hi) - max(start, lo)).total_seconds())
        day += timedelta(days=1)
    return total


def shifts(transitions: Iterable[Transition], until: datetime, rules: HoursRules) -> list[Shift]:
    """The shifts in the transitions (an open state counts up to `until`)."""
    out: list[Shift] = []
    previous: str | None = None
    for start, end, state in _spans(transitions, until):
        if not out or start - out[-1].end >= rules.shift_gap:
            out.append(Shift(start, end))
            previous = None
        shift = out[-1]
        shift.end = max(shift.end, end)
        shift.spans.append((start, end, state))
        if state == TALKING:
            shift.talk_s += (end - start).total_seconds()
            if previous != TALKING:
                shift.calls += 1
        if state != BREAK:
            shift.worked_s += (end - start).total_seconds()
            shift.night_s += night_seconds(start, end, rules)
        previous = state
    return out


def overtime_seconds(worked_by_day: dict[date, float], rules: HoursRules) -> float:
    """Overtime of these shift-days under the rules' scheme."""
    if rules.scheme == "comprehensive":
        return max(0.0, sum(worked_by_day.values()) - rules.period_limit.total_seconds())
    day_limit = rules.day_limit.total_seconds()
    over = 0.0
    regular_by_week: dict[tuple[int, int], float] = defaultdict(float)
    for day, worked in worked_by_day.items():
        over += max(0.0, worked - day_limit)
        regular_by_week[day.isocalendar()[:2]] += min(worked, day_limit)
    week_limit = rules.week_limit.total_seconds()
    return over + sum(max(0.0, regular - week_limit) for regular in regular_by_week.values())


def hours(found: Sequence[Shift], rules: HoursRules, daily_target_s: float) -> Hours:
    """An agent's figures over the given shifts."""
    by_day: dict[date, float] = defaultdict(float)
    for shift in found:
        by_day[shift.day(rules.tz)] += shift.worked_s
    worked = sum(by_day.values())
    overtime = overtime_seconds(by_day, rules)
    return Hours(
        shifts=len(found),
        calls=sum(s.calls for s in found),
        talk_s=round(sum(s.talk_s for s in found)),
        worked_s=round(worked),
        normal_s=round(worked - overtime),
        night_s=round(sum(s.night_s for s in found)),
        overtime_s=round(overtime),
        short_days=sum(1 for w in by_day.values() if w < daily_target_s),
    )

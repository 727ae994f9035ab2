"""Shifts, night hours and overtime, on fixed dates in Asia/Shanghai (no daylight saving)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from agents.ledger import Transition
from workforce.hours import HoursRules, hours, night_seconds, shifts

SH = ZoneInfo("Asia/Shanghai")
RULES = HoursRules(tz=SH)
H = 3600


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """A moment in December 2026, local time (1 December 2026 is a Tuesday)."""
    return datetime(2026, 12, 1, tzinfo=SH) + timedelta(days=day - 1, hours=hh, minutes=mm)


def shift(day: int, start: int, length_h: float, calls: int = 0) -> list[Transition]:
    """Logged in at `start` o'clock on `day` for `length_h` hours, `calls` 10-minute calls first."""
    begin = at(day, start)
    out = [Transition("available", begin)]
    for i in range(calls):
        out += [
            Transition("on_call", begin + timedelta(minutes=20 * i)),
            Transition("available", begin + timedelta(minutes=20 * i + 10)),
        ]
    return [*out, Transition("logged_out", begin + timedelta(hours=length_h))]


def test_a_night_shift_from_20_to_02_is_one_shift_with_four_night_hours() -> None:
    found = shifts(shift(3, 20, 6, calls=3), at(10, 0), RULES)
    assert len(found) == 1
    assert found[0].day(SH) == date(2026, 12, 3)
    totals = hours(found, RULES, daily_target_s=4 * H)
    assert (totals.worked_s, totals.night_s, totals.overtime_s, totals.normal_s) == (6 * H, 4 * H, 0, 6 * H)
    assert (totals.calls, totals.talk_s, totals.short_days) == (3, 30 * 60, 0)


def test_a_short_logout_past_midnight_does_not_split_the_shift_and_a_long_one_does() -> None:
    brief = [
        Transition("available", at(3, 22)),
        Transition("logged_out", at(4, 0)),
        Transition("available", at(4, 0, 10)),
        Transition("logged_out", at(4, 3)),
    ]
    assert len(shifts(brief, at(10, 0), RULES)) == 1
    long_gap = [*brief[:2], Transition("available", at(4, 2)), Transition("logged_out", at(4, 3))]
    assert [s.day(SH) for s in shifts(long_gap, at(10, 0), RULES)] == [date(2026, 12, 3), date(2026, 12, 4)]


def test_breaks_are_not_worked_time_and_overtime_starts_past_the_day_limit() -> None:
    ten_hours = [
        Transition("available", at(3, 20)),
        Transition("break", at(4, 0)),
        Transition("available", at(4, 0, 30)),
        Transition("logged_out", at(4, 6, 30)),
    ]
    totals = hours(shifts(ten_hours, at(10, 0), RULES), RULES, daily_target_s=4 * H)
    assert totals.worked_s == 10 * H
    assert totals.overtime_s == 2 * H and totals.normal_s == 8 * H
    assert totals.night_s == 7.5 * H  # 22:00-06:00 less the half-hour break


def test_a_week_past_forty_regular_hours_is_overtime_and_a_sunday_night_stays_in_its_week() -> None:
    # Mon 7 .. Sat 12 December, 8 h a day = 48 h: 8 h over the week. Sunday night 13th into
    # Monday 14th belongs to the week it starts in.
    week = [t for day in range(7, 13) for t in shift(day, 9, 8)]
    totals = hours(shifts(week, at(20, 0), RULES), RULES, daily_target_s=4 * H)
    assert (totals.worked_s, totals.overtime_s) == (48 * H, 8 * H)
    sunday = shift(13, 22, 4)
    found = shifts(week + sunday, at(20, 0), RULES)
    assert found[-1].day(SH) == date(2026, 12, 13)
    assert hours(found, RULES, daily_target_s=4 * H).overtime_s == 12 * H


def test_the_comprehensive_scheme_counts_only_the_period_total() -> None:
    rules = HoursRules(tz=SH, scheme="comprehensive", period_limit=timedelta(hours=20))
    two_long_nights = shift(3, 18, 11) + shift(5, 18, 11)
    totals = hours(shifts(two_long_nights, at(10, 0), rules), rules, daily_target_s=4 * H)
    assert (totals.worked_s, totals.overtime_s) == (22 * H, 2 * H)


def test_the_four_hour_rule_counts_short_shift_days() -> None:
    days = shift(3, 9, 3) + shift(4, 9, 2) + shift(4, 14, 2.5)
    totals = hours(shifts(days, at(10, 0), RULES), RULES, daily_target_s=4 * H)
    assert totals.short_days == 1  # the 3rd: 3 h; the 4th: 4.5 h in two shifts


def test_night_seconds_with_a_span_that_does_not_cross_midnight() -> None:
    rules = HoursRules(
        tz=SH, night_start=datetime(2026, 1, 1, 0).time(), night_end=datetime(2026, 1, 1, 6).time()
    )
    assert night_seconds(at(3, 23), at(4, 7), rules) == 6 * H
    assert night_seconds(at(3, 20), at(4, 2), RULES) == 4 * H

"""Calling windows, retries and caps with explicit instants (the clock is an argument)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialer.campaigns import CampaignSpec
from dialer.schedule import (
    RetryRule,
    caps_allow,
    in_window,
    next_allowed_by_caps,
    next_attempt_at,
    next_window_start,
    parse_window,
    retry_at,
    window_end,
)

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


def elder(**kw) -> CampaignSpec:
    return CampaignSpec(name="welfare", elder_welfare=True, **kw)


def test_parse_window() -> None:
    assert parse_window("09:00-11:30") == (540, 690)
    assert parse_window(" 9:00 ～ 24:00 ") == (540, 1440)
    for bad in ("9-11", "11:30-09:00", "22:00-02:00", "25:00-26:00", "09:60-10:00"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_elder_welfare_windows_avoid_meals_and_naps() -> None:
    c = elder()  # 2024-11-20 is a Wednesday
    assert not in_window(c, sh(2024, 11, 20, 8, 59, 59))
    assert in_window(c, sh(2024, 11, 20, 9, 0))
    assert in_window(c, sh(2024, 11, 20, 11, 29, 59))
    assert not in_window(c, sh(2024, 11, 20, 11, 30))  # the end is exclusive
    assert not in_window(c, sh(2024, 11, 20, 12, 30))  # lunch
    assert not in_window(c, sh(2024, 11, 20, 13, 45))  # nap
    assert in_window(c, sh(2024, 11, 20, 14, 30))
    assert not in_window(c, sh(2024, 11, 20, 17, 0))  # dinner
    assert not in_window(c, sh(2024, 11, 20, 22, 0))  # never an elder at 22:00
    # The same instant given in UTC gives the same answer.
    assert in_window(c, datetime(2024, 11, 20, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai


def test_default_windows_differ_at_weekends() -> None:
    c = CampaignSpec(name="notice")
    assert in_window(c, sh(2024, 11, 20, 19, 30))  # Wednesday evening
    assert not in_window(c, sh(2024, 11, 23, 19, 30))  # Saturday evening
    assert in_window(c, sh(2024, 11, 23, 10, 30))


def test_next_window_start() -> None:
    c = elder()
    assert next_window_start(c, sh(2024, 11, 20, 10, 0)) == sh(2024, 11, 20, 10, 0)  # already open
    assert next_window_start(c, sh(2024, 11, 20, 12, 0)) == sh(2024, 11, 20, 14, 30)
    assert next_window_start(c, sh(2024, 11, 20, 17, 0)) == sh(2024, 11, 21, 9, 0)
    assert next_window_start(c, sh(2024, 11, 20, 23, 59)) == sh(2024, 11, 21, 9, 0)
    # Results are in UTC.
    assert next_window_start(c, sh(2024, 11, 20, 12, 0)).tzinfo is UTC  # type: ignore[union-attr]
    assert window_end(c, sh(2024, 11, 20, 10, 0)) == sh(2024, 11, 20, 11, 30)
    assert window_end(c, sh(2024, 11, 20, 12, 0)) is None


def test_days_without_windows_dates_and_skipped_days() -> None:
    c = CampaignSpec(
        name="flu", windows={"mon-fri": ["09:00-12:00"], "weekend": []},
        start_date=date(2024, 11, 25), end_date=date(2024, 11, 29), skip_dates=[date(2024, 11, 27)],
    )  # fmt: skip
    assert next_window_start(c, sh(2024, 11, 22, 13, 0)) == sh(
        2024, 11, 25, 9, 0
    )  # Fri after hours -> Mon start
    assert not in_window(c, sh(2024, 11, 22, 10, 0))  # before start_date
    assert next_window_start(c, sh(2024, 11, 26, 13, 0)) == sh(2024, 11, 28, 9, 0)  # skips the 27th
    assert not in_window(c, sh(2024, 11, 27, 10, 0))
    assert next_window_start(c, sh(2024, 11, 29, 12, 0)) is None  # after the last window of end_date
    assert next_window_start(c, sh(2024, 12, 2, 8, 0)) is None


def test_callee_time_zone_overrides_the_campaigns() -> None:
    c = elder()
    # 21:00 in Shanghai is 08:00 in New York (EST, UTC-5): closed for the Shanghai callee, about to
    # open for the New York one.
    at = sh(2024, 11, 20, 21, 0)
    assert not in_window(c, at)
    assert not in_window(c, at, tz="America/New_York")
    assert next_window_start(c, at, tz="America/New_York") == datetime(2024, 11, 20, 9, 0, tzinfo=NY)
    assert in_window(c, sh(2024, 11, 20, 22, 0), tz="America/New_York")


def test_daylight_saving_gap_and_repeat() -> None:
    early = CampaignSpec(name="dst", timezone="America/New_York", windows={"daily": ["02:30-04:00"]})
    # 2024-03-10: clocks jump 02:00 -> 03:00. 02:30 does not exist; the window opens at the jump.
    opens = next_window_start(early, datetime(2024, 3, 10, 0, 0, tzinfo=NY))
    assert opens == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert opens is not None and in_window(early, opens)
    assert not in_window(early, opens - timedelta(seconds=1))
    # 2024-11-03: 01:00-02:00 happens twice; a 01:30 window opens at the first 01:30 (EDT).
    repeat = CampaignSpec(name="dst2", timezone="America/New_York", windows={"daily": ["01:30-03:00"]})
    assert next_window_start(repeat, datetime(2024, 11, 3, 0, 0, tzinfo=NY)) == datetime(
        2024, 11, 3, 5, 30, tzinfo=UTC
    )
    # Shanghai has no DST: 24 hours apart is always the same wall time.
    c = elder()
    for day in range(1, 366, 7):
        t = sh(2024, 1, 1, 9, 0) + timedelta(days=day)
        assert in_window(c, t) and next_window_start(c, t) == t


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        in_window(elder(), datetime(2024, 11, 20, 10, 0))


def test_retry_at_grows_and_stops() -> None:
    rule = RetryRule(delay_minutes=10, growth=2, max_attempts=4, max_delay_minutes=30)
    end = datetime(2024, 11, 20, 2, 0, tzinfo=UTC)
    assert retry_at(rule, 1, end) == end + timedelta(minutes=10)
    assert retry_at(rule, 2, end) == end + timedelta(minutes=20)
    assert retry_at(rule, 3, end) == end + timedelta(minutes=30)  # 40, capped at 30
    assert retry_at(rule, 4, end) is None  # the fourth such attempt was the last
    assert retry_at(rule, 1, end, requested_at=end + timedelta(hours=3)) == end + timedelta(hours=3)
    assert retry_at(RetryRule(delay_minutes=5, max_attempts=0), 1, end) is None
    with pytest.raises(ValueError):
        retry_at(rule, 0, end)


def test_retry_rule_accepts_durations() -> None:
    rule = RetryRule.model_validate({"delay": "1h30m", "max_delay": "1d", "max_attempts": 2})
    assert (rule.delay_minutes, rule.max_delay_minutes) == (90, 1440)


def test_daily_and_rolling_caps() -> None:
    c = elder(daily_cap=2, rolling_cap=3)
    day1 = [sh(2024, 11, 20, 9, 0), sh(2024, 11, 20, 15, 0)]
    assert not caps_allow(c, day1, sh(2024, 11, 20, 16, 0))  # two calls today already
    assert caps_allow(c, day1, sh(2024, 11, 21, 0, 0))  # a new calendar day in Shanghai
    assert next_allowed_by_caps(c, day1, sh(2024, 11, 20, 16, 0)) == sh(2024, 11, 21, 0, 0)
    # Rolling 24 h: two calls, 20th 15:00 and 21st 09:00; with a cap of 2 the next may follow when
    # the older is 24 h old (21st 15:00), although the 21st has had only one call.
    rolling = elder(daily_cap=3, rolling_cap=2)
    two = [sh(2024, 11, 20, 15, 0), sh(2024, 11, 21, 9, 0)]
    assert not caps_allow(rolling, two, sh(2024, 11, 21, 9, 5))
    assert not caps_allow(rolling, two, sh(2024, 11, 21, 14, 59, 59))
    assert caps_allow(rolling, two, sh(2024, 11, 21, 15, 0))
    assert next_allowed_by_caps(rolling, two, sh(2024, 11, 21, 9, 5)) == sh(2024, 11, 21, 15, 0)
    # The calendar day is the callee's: 10:50 and 10:55 in New York are 23:50 and 23:55 in
    # Shanghai, and 11:05 in New York is already the next day there.
    c2 = elder(daily_cap=2, rolling_cap=9)
    ny = [datetime(2024, 11, 20, 10, 50, tzinfo=NY), datetime(2024, 11, 20, 10, 55, tzinfo=NY)]
    at = datetime(2024, 11, 20, 11, 5, tzinfo=NY)
    assert not caps_allow(c2, ny, at, tz="America/New_York")
    assert caps_allow(c2, ny, at)  # the campaign's zone, Asia/Shanghai


def test_next_attempt_combines_rule_caps_and_windows() -> None:
    c = elder(daily_cap=2, rolling_cap=3, max_attempts=5)
    # Busy at 11:25: the rule says +10 min = 11:35, after the morning window: 14:30.
    ended = sh(2024, 11, 20, 11, 25)
    assert next_attempt_at(c, "busy", 1, 1, ended, [sh(2024, 11, 20, 11, 24)]) == sh(2024, 11, 20, 14, 30)
    # The second call of the day was at 14:30 and was busy: the daily cap moves it to tomorrow 09:00.
    attempts = [sh(2024, 11, 20, 11, 24), sh(2024, 11, 20, 14, 30)]
    assert next_attempt_at(c, "busy", 2, 2, sh(2024, 11, 20, 14, 31), attempts) == sh(2024, 11, 21, 9, 0)
    # Rule exhausted (busy allows 3), campaign limit reached, unknown outcome.
    assert next_attempt_at(c, "busy", 3, 3, ended, attempts) is None
    assert next_attempt_at(c, "no_answer", 1, 5, ended, attempts) is None
    with pytest.raises(ValueError, match="unknown outcome"):
        next_attempt_at(c, "eaten_by_grue", 1, 1, ended, attempts)

"""When a contact may be called: calling windows, retry delays and per-contact caps.

Pure functions of their arguments (no clock, no database): the dialer passes the moment it is
asking about, so tests and the dialer agree on every answer. All instants are timezone-aware and
returned in UTC; windows, dates and the daily cap are read in the callee's time zone (the
contact's own, else the campaign's).

- `in_window(campaign, at)` — may a call start now?
- `next_window_start(campaign, after)` — the first moment ≥ after when it may (None: never again);
- `window_end(campaign, at)` — when the open window closes;
- `retry_at(rule, attempt_no, ended_at)` — when to retry after an outcome (None: give up);
- `caps_allow` / `next_allowed_by_caps` — the per-day and rolling-24-hour attempt caps;
- `next_attempt_at(...)` — all of the above together, for scheduling a retry.

Daylight-saving time: a window starting in a skipped hour opens when the clock jumps; in a repeated
hour it opens at the first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# What a retry rule is named after: a call's outcome, or an agent's "retry later" disposition.
OUTCOMES = ("busy", "no_answer", "machine", "failed", "abandoned", "no_input", "callback", "retry_later")
Window = tuple[int, int]  # minutes after local midnight, [start, end)

_WINDOW = re.compile(r"\s*(\d{1,2})[:：](\d{2})\s*[-–~～至]\s*(\d{1,2})[:：](\d{2})\s*")


def parse_window(text: str) -> Window:
    """ "09:00-11:30" -> (540, 690). End may be 24:00. Raises ValueError saying what is wrong."""
    m = _WINDOW.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a window: write HH:MM-HH:MM, e.g. 09:00-11:30")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: not a time of day")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise ValueError(f"{text!r}: the window ends before it starts (windows cannot cross midnight)")
    return start, end


def format_window(window: Window) -> str:
    (h1, m1), (h2, m2) = divmod(window[0], 60), divmod(window[1], 60)
    return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


def parse_day_windows(texts: Sequence[str]) -> tuple[Window, ...]:
    """One day's windows, sorted; overlapping windows are an error."""
    windows = sorted(parse_window(t) for t in texts)
    for (s1, e1), (s2, e2) in pairwise(windows):
        if s2 < e1:
            raise ValueError(
                f"windows {format_window((s1, e1))} and {format_window((s2, e2))} overlap: merge them"
            )
    return tuple(windows)


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+)s)?")


def parse_minutes(value: Any) -> Any:
    """Minutes as a number, or a duration like "90s", "10m", "2h", "1h30m", "1d"."""
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        m = _DURATION.fullmatch(text)
        if text and m and any(m.groups()):
            d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return d * 1440 + h * 60 + mi + s / 60
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a duration: write minutes (30) or 30m, 2h, 1d") from None
    return value


class RetryRule(BaseModel):
    """What to do after an attempt ended with one outcome. In YAML `delay`/`max_delay` take
    durations (10m, 2h, 1d) as well as minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    delay_minutes: float = Field(
        gt=0,
        le=60 * 24 * 30,
        validation_alias=AliasChoices("delay_minutes", "delay"),
        description="wait before the first retry",
    )
    growth: float = Field(default=1.0, ge=1.0, le=10.0, description="delay factor per further attempt")
    max_attempts: int = Field(
        ge=0, le=50, description="at most this many attempts may end with this outcome; 0: never retry"
    )
    max_delay_minutes: float | None = Field(
        default=None, gt=0, le=60 * 24 * 30, validation_alias=AliasChoices("max_delay_minutes", "max_delay")
    )

    _durations = field_validator("delay_minutes", "max_delay_minutes", mode="before")(parse_minutes)

    @model_validator(mode="after")
    def _max_not_below_delay(self) -> RetryRule:
        if self.max_delay_minutes is not None and self.max_delay_minutes < self.delay_minutes:
            raise ValueError("max_delay_minutes is shorter than delay_minutes")
        return self


class Scheduled(Protocol):
    """What the schedule functions read from a campaign (a CampaignSpec has all of it)."""

    @property
    def timezone(self) -> str: ...
    @property
    def windows(self) -> Mapping[str, Sequence[str]]: ...
    @property
    def start_date(self) -> date | None: ...
    @property
    def end_date(self) -> date | None: ...
    @property
    def skip_dates(self) -> Sequence[date]: ...
    @property
    def daily_cap(self) -> int: ...
    @property
    def rolling_cap(self) -> int: ...


class HasSpec(Protocol):
    @property
    def spec(self) -> Scheduled: ...


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    days: tuple[tuple[Window, ...], ...]  # Monday first
    start: date | None
    end: date | None
    skip: frozenset[date]

    def open_on(self, day: date) -> bool:
        if (self.start and day < self.start) or (self.end and day > self.end) or day in self.skip:
            return False
        return bool(self.days[day.weekday()])


@lru_cache(maxsize=256)
def _compile(
    tz: str, windows: tuple[tuple[str, ...], ...], start: date | None, end: date | None, skip: frozenset[date]
) -> Schedule:
    return Schedule(ZoneInfo(tz), tuple(parse_day_windows(w) for w in windows), start, end, skip)


def schedule_of(campaign: Scheduled | HasSpec, tz: str | None = None) -> Schedule:
    """The compiled schedule of a campaign (or its spec), in the callee's zone `tz` if given."""
    spec: Scheduled = campaign.spec if hasattr(campaign, "spec") else campaign
    windows = tuple(tuple(spec.windows.get(d, ())) for d in DAYS)
    return _compile(tz or spec.timezone, windows, spec.start_date, spec.end_date, frozenset(spec.skip_dates))


def _spec(campaign: Scheduled | HasSpec) -> Scheduled:
    return campaign.spec if hasattr(campaign, "spec") else campaign


def _aware(at: datetime, what: str = "time") -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {at.isoformat()})")
    return at


def _seconds(local: datetime) -> int:
    return local.hour * 3600 + local.minute * 60 + local.second


def in_window(campaign: Scheduled | HasSpec, at: datetime, tz: str | None = None) -> bool:
    """May a call to this campaign's callee (in zone `tz`, default the campaign's) start at `at`?"""
    sch = schedule_of(campaign, tz)
    local = _aware(at).astimezone(sch.zone)
    if not sch.open_on(local.date()):
        return False
    t = _seconds(local)
    return any(s * 60 <= t < e * 60 for s, e in sch.days[local.weekday()])


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the local clock in `zone` reads `day` + `minutes`, or later."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    first = naive.replace(tzinfo=zone)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == naive:
        return utc
    # The time does not exist (the clock jumped over it): the window opens at the jump.
    lo = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    hi = utc
    if lo > hi:
        lo, hi = hi, lo
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def next_window_start(
    campaign: Scheduled | HasSpec, after: datetime, tz: str | None = None, horizon_days: int = 800
) -> datetime | None:
    """The first moment ≥ `after` at which `in_window` holds; None if the campaign never opens again."""
    after = _aware(after, "after").astimezone(UTC)
    if in_window(campaign, after, tz):
        return after
    sch = schedule_of(campaign, tz)
    day = after.astimezone(sch.zone).date()
    if sch.start and day < sch.start:
        day = sch.start
    for _ in range(horizon_days):
        if sch.end and day > sch.end:
            return None
        if sch.open_on(day):
            for start, _end in sch.days[day.weekday()]:
                candidate = max(_instant(day, start, sch.zone), after)
                if in_window(campaign, candidate, tz):
                    return candidate
        day += timedelta(days=1)
    return None


def window_end(campaign: Scheduled | HasSpec, at: datetime, tz: str | None = None) -> datetime | None:
    """When the window open at `at` closes (UTC); None if no window is open at `at`."""
    if not in_window(campaign, at, tz):
        return None
    sch = schedule_of(campaign, tz)
    local = at.astimezone(sch.zone)
    t = _seconds(local)
    for s, e in sch.days[local.weekday()]:
        if s * 60 <= t < e * 60:
            return _instant(local.date(), e, sch.zone)
    return None  # pragma: no cover - in_window said a window is open


def retry_at(
    rule: RetryRule, attempt_no: int, ended_at: datetime, requested_at: datetime | None = None
) -> datetime | None:
    """When to retry after the `attempt_no`-th attempt (1-based) that ended with this rule's outcome.

    The delay is `delay_minutes × growth^(attempt_no − 1)`, at most `max_delay_minutes`; None once
    `max_attempts` attempts have ended this way. `requested_at` (a callback the callee asked for)
    is honoured when it is later than the computed time.
    """
    if attempt_no < 1:
        raise ValueError("attempt_no counts from 1")
    _aware(ended_at, "ended_at")
    if attempt_no >= rule.max_attempts:
        return None
    minutes = rule.delay_minutes * rule.growth ** (attempt_no - 1)
    if rule.max_delay_minutes is not None:
        minutes = min(minutes, rule.max_delay_minutes)
    when = ended_at.astimezone(UTC) + timedelta(minutes=minutes)
    if requested_at is not None:
        when = max(when, _aware(requested_at, "requested_at").astimezone(UTC))
    return when


def caps_allow(
    campaign: Scheduled | HasSpec, attempts: Sequence[datetime], at: datetime, tz: str | None = None
) -> bool:
    """Do the per-day (callee's calendar day) and rolling-24-hour caps allow another attempt at `at`?

    `attempts` are the start times of the contact's earlier attempts.
    """
    spec = _spec(campaign)
    at = _aware(at)
    zone = schedule_of(campaign, tz).zone
    today = at.astimezone(zone).date()
    if sum(1 for a in attempts if a <= at and a.astimezone(zone).date() == today) >= spec.daily_cap:
        return False
    since = at - timedelta(hours=24)
    return sum(1 for a in attempts if since < a <= at) < spec.rolling_cap


def next_allowed_by_caps(
    campaign: Scheduled | HasSpec, attempts: Sequence[datetime], at: datetime, tz: str | None = None
) -> datetime:
    """The first moment ≥ `at` at which `caps_allow` holds."""
    spec = _spec(campaign)
    zone = schedule_of(campaign, tz).zone
    t = _aware(at).astimezone(UTC)
    ordered = sorted(a.astimezone(UTC) for a in attempts)
    for _ in range(len(ordered) + 3):
        local_day = t.astimezone(zone).date()
        today = [a for a in ordered if a <= t and a.astimezone(zone).date() == local_day]
        if len(today) >= spec.daily_cap:
            t = max(t, _instant(local_day + timedelta(days=1), 0, zone))
            continue
        recent = [a for a in ordered if t - timedelta(hours=24) < a <= t]
        if len(recent) >= spec.rolling_cap:
            t = max(t, recent[len(recent) - spec.rolling_cap] + timedelta(hours=24))
            continue
        return t
    return t


class RetryPolicy(Scheduled, Protocol):
    @property
    def retry(self) -> Mapping[str, RetryRule]: ...
    @property
    def max_attempts(self) -> int: ...


def next_attempt_at(
    campaign: RetryPolicy,
    outcome: str,
    outcome_attempts: int,
    total_attempts: int,
    ended_at: datetime,
    attempts: Sequence[datetime] = (),
    tz: str | None = None,
    requested_at: datetime | None = None,
) -> datetime | None:
    """When to call again after an attempt: retry rule, then caps, then the calling window.

    `outcome_attempts` counts the attempts that ended with `outcome`, this one included;
    `total_attempts` all attempts, this one included; `attempts` their start times. None means the
    contact is finished (rule or campaign attempt limit reached, or the campaign never opens again).
    """
    if total_attempts >= campaign.max_attempts:
        return None
    rule = campaign.retry.get(outcome)
    if rule is None:
        raise ValueError(f"unknown outcome {outcome!r} (outcomes: {', '.join(OUTCOMES)})")
    t = retry_at(rule, outcome_attempts, ended_at, requested_at)
    for _ in range(50):
        if t is None:
            return None
        allowed = next_allowed_by_caps(campaign, attempts, t, tz)
        opens = next_window_start(campaign, allowed, tz)
        if opens is None or opens == allowed:
            return opens
        t = opens
    return t

"""*My day*: what an agent hears and reads about today's pay-relevant counts.

Today is the agent's current shift-day (:mod:`workforce.hours`): a night shift that started
yesterday at 20:00 and is still running is today's, so it never splits at midnight. Counted over
that shift-day's shifts: worked time (breaks excluded), night time, calls (times on a call) and talk
time; the progress towards the agent's daily target (the 4-hour rule); and the overtime warning, the
same one supervisors get (``near`` within ``warn_before`` of the day limit, ``over`` past it); and
the compliments: callers who rated the agent's calls at least ``compliment_score`` (post-call
survey, 1-5) since the shift-day began, so praise reaches the agent, not only the reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.ledger import spoken_duration
from agents.states import target_minutes, transitions
from core.formats import duration
from core.i18n import _, current_locale, ngettext
from ivr.models import CallSurvey
from workforce.breaks import breaks
from workforce.hours import HoursRules, Shift, shifts

Warning = Literal["near", "over"]
LOOK_BACK = timedelta(days=2)  # enough for any shift still running


@dataclass(frozen=True)
class ShiftView:
    start: str
    end: str | None  # None: still running
    worked_s: int
    night_s: int
    talk_s: int
    calls: int


@dataclass(frozen=True)
class MyDay:
    agent: str
    day: date
    shifts: list[ShiftView] = field(default_factory=list)
    worked_s: int = 0
    night_s: int = 0
    talk_s: int = 0
    calls: int = 0
    target_s: int = 0
    left_s: int = 0  # to the daily target
    progress: float = 0.0  # share of the daily target, at most 1
    day_limit_s: int = 0
    overtime_s: int = 0
    warning: Warning | None = None
    compliments: int = 0  # callers' top survey scores since the shift-day began
    latest_compliment_at: str | None = None  # the newest one's time (a client may tell what is new)
    break_taken_min: int = 0  # in the current shift (workforce.breaks)
    break_allowance_min: int = 0
    spoken: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = self.day.isoformat()
        return data


def shift_day(found: list[Shift], now: datetime, rules: HoursRules) -> date:
    """The shift-day `now` is in: the running shift's, else the local date."""
    if found and found[-1].end >= now:
        return found[-1].day(rules.tz)
    return now.astimezone(rules.tz).date()


def spoken(day: MyDay) -> str:
    """'今天已工作3小时，其中夜间1小时；接打5通电话，通话40分；距每天4小时的目标还差1小时。' and the
    overtime warning, in the request's language."""
    worked = spoken_duration(day.worked_s)
    parts = [
        _(
            "Today you worked {worked}, {night} of it at night.",
            worked=worked,
            night=spoken_duration(day.night_s),
        )
        if day.night_s >= 60
        else _("Today you worked {worked}.", worked=worked),
        _("{calls} calls, talk time {talk}.", calls=day.calls, talk=spoken_duration(day.talk_s)),
    ]
    target = duration(day.target_s, adjective=True)
    if day.left_s >= 60:
        parts.append(_("{left} to your {target} day.", left=spoken_duration(day.left_s), target=target))
    else:
        parts.append(_("Your {target} day is done.", target=target))
    if day.warning == "over":
        parts.append(_("Overtime so far: {over}.", over=spoken_duration(day.overtime_s)))
    elif day.warning == "near":
        left = max(0, day.day_limit_s - day.worked_s)
        parts.append(_("Overtime begins in {left}.", left=spoken_duration(left)))
    parts.append(
        _(
            "Break: {taken} of {allowance} minutes used.",
            taken=day.break_taken_min,
            allowance=day.break_allowance_min,
        )
    )
    if day.compliments:
        parts.append(
            ngettext(
                "{n} caller praised your service today. Thank you!",
                "{n} callers praised your service today. Thank you!",
                day.compliments,
            )
        )
    return ("" if current_locale().startswith("zh") else " ").join(parts)  # Chinese: no spaces


def compliments(session: Session, agent: str, since: datetime, score: int) -> tuple[int, datetime | None]:
    """How many survey scores of at least `score` the agent's calls had since `since`, and the newest's time."""
    count, latest = session.execute(
        select(func.count(CallSurvey.id), func.max(CallSurvey.answered_at)).where(
            CallSurvey.agent == agent, CallSurvey.score >= score, CallSurvey.answered_at >= since
        )
    ).one()
    return int(count or 0), latest


def my_day(
    session: Session,
    agent: str,
    rules: HoursRules,
    warn_before: timedelta,
    now: datetime,
    compliment_score: int = 5,
    break_allowance_min: float = 30,
) -> MyDay:
    """The agent's current shift-day: hours by shift, night, calls, talk, target, overtime and the
    callers' compliments."""
    found = shifts(transitions(session, agent, now - LOOK_BACK, now), now, rules)
    day = shift_day(found, now, rules)
    todays = [s for s in found if s.day(rules.tz) == day]
    worked = sum(s.worked_s for s in todays)
    target = target_minutes(session, agent) * 60
    limit = rules.day_limit.total_seconds()
    warning: Warning | None = None
    if worked > limit:
        warning = "over"
    elif worked >= limit - warn_before.total_seconds():
        warning = "near"
    views = [
        ShiftView(
            start=s.start.astimezone(rules.tz).isoformat(timespec="minutes"),
            end=None if s.end >= now else s.end.astimezone(rules.tz).isoformat(timespec="minutes"),
            worked_s=round(s.worked_s),
            night_s=round(s.night_s),
            talk_s=round(s.talk_s),
            calls=s.calls,
        )
        for s in todays
    ]
    began = min([s.start for s in todays], default=datetime.combine(day, time(), rules.tz))
    praised, latest = compliments(session, agent, began, compliment_score)
    took = breaks(session, agent, rules, break_allowance_min, now)
    # Whole minutes, so that worked + left always make the target when said aloud.
    worked_min = int(worked // 60)
    result = MyDay(
        agent=agent,
        day=day,
        shifts=views,
        worked_s=round(worked),
        night_s=round(sum(s.night_s for s in todays)),
        talk_s=round(sum(s.talk_s for s in todays)),
        calls=sum(s.calls for s in todays),
        target_s=target,
        left_s=max(0, target - worked_min * 60),
        progress=round(min(1.0, worked / target), 3) if target else 1.0,
        day_limit_s=round(limit),
        overtime_s=round(max(0.0, worked - limit)),
        warning=warning,
        compliments=praised,
        latest_compliment_at=latest.isoformat() if latest else None,
        break_taken_min=took.taken_min,
        break_allowance_min=took.allowance_min,
    )
    return MyDay(**{**result.__dict__, "spoken": spoken(result)})

"""Required staff per half hour for a line's week, from its inbound call history.

Method: for every half hour of the target ISO week (local time, the hotline's time zone), take the
same weekday and half hour in each of the `history_weeks` weeks before it. Calls = the mean number of
calls queued for agents (a day with none counts as 0); AHT = the mean talk time of the calls agents
answered in those half hours (if none answered, the line's mean over the whole history window).
Agents = Erlang C for the line's service level, or for a line staffed by occupancy only
(`max_occupancy`) ceil(traffic / max_occupancy). Half hours with no calls in the history are left out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import _
from hotline.config import InboundConfig, InboundNumber
from hotline.models import InboundCallRecord
from workforce.erlang import Demand, by_occupancy, required

SLOT = timedelta(minutes=30)
SLOTS_PER_DAY = 48


def parse_week(text: str) -> date:
    """The Monday of an ISO week written 2026-W50."""
    try:
        year, week = text.upper().split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    except ValueError as exc:
        raise ValueError(_("week {value}: write an ISO week like 2026-W50", value=repr(text))) from exc


def find_line(config: InboundConfig, name: str) -> InboundNumber:
    for number, line in config.numbers.items():
        if name in (line.name, number):
            return line
    known = ", ".join(sorted(line.name for line in config.numbers.values())) or "none"
    raise ValueError(
        _("line {name} is not in the inbound configuration (lines: {known})", name=repr(name), known=known)
    )


@dataclass(frozen=True)
class History:
    """Per (weekday, slot index): calls per past day, talk times of answered calls."""

    calls: dict[tuple[int, int], int]
    talks: dict[tuple[int, int], list[float]]
    weeks: int


def load_history(session: Session, line: str, monday: date, weeks: int, tz: ZoneInfo) -> History:
    start = datetime.combine(monday - timedelta(weeks=weeks), time.min, tz)
    end = datetime.combine(monday, time.min, tz)
    rows = session.execute(
        select(InboundCallRecord.arrived_at, InboundCallRecord.talk_s, InboundCallRecord.agent).where(
            InboundCallRecord.line == line,
            InboundCallRecord.queued.is_(True),
            InboundCallRecord.arrived_at >= start,
            InboundCallRecord.arrived_at < end,
        )
    )
    calls: dict[tuple[int, int], int] = defaultdict(int)
    talks: dict[tuple[int, int], list[float]] = defaultdict(list)
    for arrived_at, talk_s, agent in rows:
        local = arrived_at.astimezone(tz)
        key = (local.weekday(), (local.hour * 60 + local.minute) // 30)
        calls[key] += 1
        if agent and talk_s > 0:
            talks[key].append(talk_s)
    return History(dict(calls), dict(talks), weeks)


def forecast(
    session: Session, config: InboundConfig, line_name: str, monday: date, history_weeks: int = 4
) -> dict[str, Any]:
    """The week's required staff per half hour (see the module's method)."""
    line = find_line(config, line_name)
    tz = ZoneInfo(config.timezone)
    history = load_history(session, line.name, monday, history_weeks, tz)
    every_talk = [t for talks in history.talks.values() for t in talks]
    line_aht = sum(every_talk) / len(every_talk) if every_talk else 0.0
    slots = []
    for key in sorted(history.calls):
        weekday, index = key
        calls = history.calls[key] / history.weeks
        talks = history.talks.get(key, [])
        aht = sum(talks) / len(talks) if talks else line_aht
        begins = datetime.combine(monday + timedelta(days=weekday), time.min, tz) + index * SLOT
        slot: dict[str, Any] = {"start": begins.isoformat(), "calls": round(calls, 2), "aht_s": round(aht, 1)}
        if aht <= 0:
            slot["agents"] = None  # calls but no answered call to time: no basis for a figure
        elif line.max_occupancy is not None:
            slot["agents"] = by_occupancy(calls * aht / SLOT.total_seconds(), line.max_occupancy)
        else:
            target = line.service_level
            demand = Demand(calls, SLOT.total_seconds(), aht, target.answer_within_s, target.level)
            slot.update(required(demand).as_dict())
        slots.append(slot)
    method = "occupancy" if line.max_occupancy is not None else "erlang_c"
    return {
        "line": line.name,
        "week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
        "timezone": config.timezone,
        "method": method,
        "target": {"max_occupancy": line.max_occupancy}
        if line.max_occupancy is not None
        else line.service_level.model_dump(),
        "history_weeks": history_weeks,
        "slots": slots,
    }

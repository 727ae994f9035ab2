"""Shifts by the hour: agents pick open hours on a line, managers see the gaps and publish the week.

An hour is *needed* when the line's forecast (:mod:`workforce.forecast`) asks for agents in either of
its half hours: the hour needs the larger of the two. An hour is *open* while fewer agents picked it
than it needs; a *gap* is an hour still open. Hours are on the hotline's clock (its time zone).

Rules: an agent picks only an open hour, not one already begun, on a line they serve, and never two
lines in the same hour; an agent drops only an hour not yet begun, and after the week is published
only a supervisor or manager may drop it (the agents' rota is final, but they may still fill gaps).
Every pick, drop and publish is audited. Stored in ``shifts`` and ``shift_weeks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.profiles import ProfileError, get_profile
from core.audit import audit
from core.i18n import _
from hotline.config import InboundConfig, InboundNumber
from workforce.forecast import find_line, forecast
from workforce.models import ShiftSlot, ShiftWeek

HOUR = timedelta(hours=1)


class ShiftError(ValueError):
    """A shift request that cannot be carried out; `status` is the HTTP answer."""

    status = 409


class BadShift(ShiftError):
    status = 422


class NotAllowed(ShiftError):
    status = 403


class NoSuchShift(ShiftError):
    status = 404


def week_name(monday: date) -> str:
    year, week, _day = monday.isocalendar()
    return f"{year}-W{week:02d}"


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass
class Hour:
    start: datetime  # local, on the hour
    needed: int
    agents: list[str] = field(default_factory=list)

    @property
    def open(self) -> int:
        return max(0, self.needed - len(self.agents))

    def as_dict(self, viewer: str | None = None, names: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start": self.start.isoformat(),
            "end": (self.start + HOUR).isoformat(),
            "needed": self.needed,
            "picked": len(self.agents),
            "open": self.open,
        }
        if names:
            out["agents"] = list(self.agents)
        if viewer is not None:
            out["mine"] = viewer in self.agents
        return out


@dataclass
class Rota:
    line: str
    week: str
    monday: date
    tz: ZoneInfo
    hours: list[Hour]
    published_by: str | None = None
    published_at: datetime | None = None

    @property
    def gaps(self) -> list[Hour]:
        return [h for h in self.hours if h.open]

    def as_dict(self, viewer: str | None = None, names: bool = True) -> dict[str, Any]:
        return {
            "line": self.line,
            "week": self.week,
            "timezone": str(self.tz),
            "published": self.published_at is not None,
            "published_by": self.published_by,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "needed": sum(h.needed for h in self.hours),
            "picked": sum(len(h.agents) for h in self.hours),
            "gaps": sum(h.open for h in self.hours),
            "hours": [h.as_dict(viewer, names) for h in self.hours],
        }


def needed_by_hour(slots: list[dict[str, Any]], tz: ZoneInfo) -> dict[datetime, int]:
    """Agents needed per local hour: the larger of its two half hours (slots without a figure: none)."""
    needed: dict[datetime, int] = {}
    for slot in slots:
        agents = slot.get("agents")
        if not agents:
            continue
        start = datetime.fromisoformat(slot["start"]).astimezone(tz)
        hour = start.replace(minute=0, second=0, microsecond=0)
        needed[hour] = max(needed.get(hour, 0), int(agents))
    return needed


def _line(config: InboundConfig, name: str) -> InboundNumber:
    try:
        return find_line(config, name)
    except ValueError as exc:
        raise NoSuchShift(str(exc)) from exc


def _week_bounds(monday: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(monday, time.min, tz)
    return start, datetime.combine(monday + timedelta(days=7), time.min, tz)


def rota(
    session: Session, config: InboundConfig, line_name: str, monday: date, history_weeks: int = 4
) -> Rota:
    """The line's week: every hour that is needed or picked, who picked it, and whether published."""
    line = _line(config, line_name)
    tz = ZoneInfo(config.timezone)
    plan = forecast(session, config, line.name, monday, history_weeks)
    needed = needed_by_hour(plan["slots"], tz)
    start, end = _week_bounds(monday, tz)
    picks = session.scalars(
        select(ShiftSlot)
        .where(ShiftSlot.line == line.name, ShiftSlot.starts_at >= start, ShiftSlot.starts_at < end)
        .order_by(ShiftSlot.starts_at, ShiftSlot.agent)
    )
    hours = {at: Hour(at, n) for at, n in needed.items()}
    for pick in picks:
        at = pick.starts_at.astimezone(tz)
        hours.setdefault(at, Hour(at, 0)).agents.append(pick.agent)
    week = week_name(monday)
    published = session.scalar(select(ShiftWeek).where(ShiftWeek.line == line.name, ShiftWeek.week == week))
    return Rota(
        line=line.name,
        week=week,
        monday=monday,
        tz=tz,
        hours=[hours[at] for at in sorted(hours)],
        published_by=published.published_by if published else None,
        published_at=published.published_at if published else None,
    )


def parse_start(text: str, tz: ZoneInfo) -> datetime:
    """An hour's start written 2026-12-14T09:00 (local) or with an offset; on the hour."""
    try:
        start = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadShift(_("start {value}: write a time like 2026-12-14T09:00", value=repr(text))) from exc
    if start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    start = start.astimezone(tz)
    if (start.minute, start.second, start.microsecond) != (0, 0, 0):
        raise BadShift(_("start {value}: shifts start on the hour, e.g. 09:00", value=repr(text)))
    return start


def _serves(session: Session, agent: str, line: InboundNumber, config: InboundConfig) -> None:
    try:
        profile = get_profile(session, agent)
    except ProfileError as exc:
        raise BadShift(str(exc)) from exc
    numbers = {number for number, ln in config.numbers.items() if ln.name == line.name}
    if profile.lines and not ({line.name} | numbers) & set(profile.lines):
        raise NotAllowed(
            _(
                "agent {agent} does not serve line {line} (their lines: {lines})",
                agent=agent,
                line=line.name,
                lines=", ".join(profile.lines),
            )
        )


def _begun(start: datetime, now: datetime) -> None:
    if start <= now:
        raise ShiftError(_("the hour from {start} has already begun", start=start.strftime("%Y-%m-%d %H:%M")))


def pick(
    session: Session,
    config: InboundConfig,
    line_name: str,
    agent: str,
    start_text: str,
    *,
    actor: str,
    now: datetime,
) -> Hour:
    """The agent takes one open hour on the line; the hour as it now stands."""
    line = _line(config, line_name)
    tz = ZoneInfo(config.timezone)
    start = parse_start(start_text, tz)
    _begun(start, now)
    _serves(session, agent, line, config)
    when = start.strftime("%Y-%m-%d %H:%M")
    taken = session.scalar(select(ShiftSlot).where(ShiftSlot.agent == agent, ShiftSlot.starts_at == start))
    if taken is not None:
        raise ShiftError(
            _(
                "{agent} already has the hour from {start} (line {line})",
                agent=agent,
                start=when,
                line=taken.line,
            )
        )
    monday = monday_of(start.date())
    hour = next((h for h in rota(session, config, line.name, monday).hours if h.start == start), None)
    if hour is None or hour.open == 0:
        raise ShiftError(
            _("the hour from {start} on line {line} has no open place", start=when, line=line.name)
        )
    session.add(
        ShiftSlot(
            agent=agent, line=line.name, starts_at=start, ends_at=start + HOUR,
            week=week_name(monday), picked_by=actor,
        )
    )  # fmt: skip
    audit(session, actor, "shift.pick", target=agent, line=line.name, start=start.isoformat())
    session.flush()
    hour.agents.append(agent)
    return hour


def drop(
    session: Session,
    config: InboundConfig,
    line_name: str,
    agent: str,
    start_text: str,
    *,
    actor: str,
    now: datetime,
    supervisor: bool = False,
) -> None:
    """The agent gives the hour back (after publishing: only a supervisor or manager)."""
    line = _line(config, line_name)
    tz = ZoneInfo(config.timezone)
    start = parse_start(start_text, tz)
    when = start.strftime("%Y-%m-%d %H:%M")
    row = session.scalar(
        select(ShiftSlot).where(
            ShiftSlot.agent == agent, ShiftSlot.starts_at == start, ShiftSlot.line == line.name
        )
    )
    if row is None:
        raise NoSuchShift(
            _("{agent} has no shift from {start} on line {line}", agent=agent, start=when, line=line.name)
        )
    _begun(start, now)
    week = week_name(monday_of(start.date()))
    published = session.scalar(select(ShiftWeek).where(ShiftWeek.line == line.name, ShiftWeek.week == week))
    if published is not None and not supervisor:
        raise NotAllowed(
            _(
                "week {week} on line {line} is published: ask a supervisor to drop the hour from {start}",
                week=week,
                line=line.name,
                start=when,
            )
        )
    session.delete(row)
    audit(session, actor, "shift.drop", target=agent, line=line.name, start=start.isoformat())
    session.flush()


def publish(
    session: Session, config: InboundConfig, line_name: str, monday: date, *, actor: str, now: datetime
) -> Rota:
    """The manager publishes the line's week (once); the rota as published, gaps and all."""
    line = _line(config, line_name)
    week = week_name(monday)
    found = session.scalar(select(ShiftWeek).where(ShiftWeek.line == line.name, ShiftWeek.week == week))
    if found is not None:
        raise ShiftError(
            _(
                "week {week} on line {line} was already published by {who}",
                week=week,
                line=line.name,
                who=found.published_by,
            )
        )
    session.add(ShiftWeek(line=line.name, week=week, published_by=actor, published_at=now))
    session.flush()
    result = rota(session, config, line.name, monday)
    audit(
        session, actor, "shift.publish", target=f"{line.name}:{week}",
        picked=sum(len(h.agents) for h in result.hours), gaps=sum(h.open for h in result.hours),
    )  # fmt: skip
    return result


def agent_hours(session: Session, agent: str, start: datetime, end: datetime) -> list[ShiftSlot]:
    """The agent's picked hours starting within [start, end), in order."""
    return list(
        session.scalars(
            select(ShiftSlot)
            .where(ShiftSlot.agent == agent, ShiftSlot.starts_at >= start, ShiftSlot.starts_at < end)
            .order_by(ShiftSlot.starts_at)
        )
    )

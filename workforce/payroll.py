"""The payroll export: per agent and period, calls, talk time, normal, night and overtime hours.

Read from the agents' state ledger with :mod:`workforce.hours`; written as CSV (UTF-8 with a BOM, so
Excel shows Chinese names) or XLSX. Every export is audited (who, which period, which agents).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import openpyxl
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.models import AgentStateChange
from agents.states import target_minutes, transitions
from core.audit import audit
from core.i18n import _
from core.settings import Settings
from workforce.hours import Hours, HoursRules, hours, shifts

Format = Literal["csv", "xlsx"]
COLUMNS = (
    "agent",
    "from",
    "to",
    "shifts",
    "calls",
    "talk_h",
    "worked_h",
    "normal_h",
    "night_h",
    "overtime_h",
    "short_days",
    "daily_target_h",
)
# How far past the period's last day a shift that started on it may run (a night shift).
SHIFT_TAIL = timedelta(hours=36)


def _clock(text: str, name: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        setting = "WARMLINE_" + name.upper()
        raise ValueError(_("{setting}={value}: write HH:MM", setting=setting, value=repr(text))) from exc


def rules_from(settings: Settings) -> HoursRules:
    """The hours rules the settings give; a bad value raises ValueError naming the setting."""
    return HoursRules(
        tz=ZoneInfo(settings.timezone),
        night_start=_clock(settings.hours_night_start, "hours_night_start"),
        night_end=_clock(settings.hours_night_end, "hours_night_end"),
        shift_gap=timedelta(minutes=settings.hours_shift_gap_minutes),
        day_limit=timedelta(hours=settings.hours_day_limit),
        week_limit=timedelta(hours=settings.hours_week_limit),
        scheme=settings.hours_scheme,
        period_limit=timedelta(hours=settings.hours_period_limit),
    )


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        start = datetime.combine(self.first, time.min, tz)
        return start, datetime.combine(self.last + timedelta(days=1), time.min, tz)


@dataclass(frozen=True)
class PayrollRow:
    agent: str
    period: Period
    hours: Hours
    daily_target_minutes: int

    def values(self) -> list[str | int | float]:
        h = self.hours
        return [
            self.agent,
            self.period.first.isoformat(),
            self.period.last.isoformat(),
            h.shifts,
            h.calls,
            *(round(s / 3600, 2) for s in (h.talk_s, h.worked_s, h.normal_s, h.night_s, h.overtime_s)),
            h.short_days,
            round(self.daily_target_minutes / 60, 2),
        ]


def agent_hours(session: Session, agent: str, period: Period, rules: HoursRules, now: datetime) -> PayrollRow:
    """One agent's figures over the shifts that start within the period."""
    start, end = period.bounds(rules.tz)
    changes = transitions(session, agent, start, end + SHIFT_TAIL)
    found = [s for s in shifts(changes, min(now, end + SHIFT_TAIL), rules) if start <= s.start < end]
    target = target_minutes(session, agent)
    return PayrollRow(agent, period, hours(found, rules, target * 60), target)


def payroll(
    session: Session, period: Period, rules: HoursRules, now: datetime, agent: str | None = None
) -> list[PayrollRow]:
    """A row per agent with any state in the period (or only `agent`), by name."""
    start, end = period.bounds(rules.tz)
    if agent is not None:
        names = [agent]
    else:
        stmt = (
            select(AgentStateChange.agent)
            .where(AgentStateChange.since >= start - SHIFT_TAIL, AgentStateChange.since < end)
            .distinct()
        )
        names = sorted(session.scalars(stmt))
    return [agent_hours(session, name, period, rules, now) for name in names]


def render(rows: list[PayrollRow], fmt: Format) -> bytes:
    """The export's bytes: CSV (UTF-8 with a BOM) or an XLSX workbook with one sheet."""
    if fmt == "csv":
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        writer.writerows(row.values() for row in rows)
        return text.getvalue().encode("utf-8-sig")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "payroll"
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append(row.values())
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(session: Session, actor: str, rows: list[PayrollRow], period: Period, fmt: Format) -> bytes:
    """The export's bytes, audited in the caller's transaction (who, period, format, agents)."""
    audit(
        session,
        actor,
        "workforce.payroll_export",
        target=f"{period.first.isoformat()}..{period.last.isoformat()}",
        format=fmt,
        agents=[row.agent for row in rows],
    )
    return render(rows, fmt)

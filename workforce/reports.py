"""Reports people read: per line, the team or each agent, by day or ISO week, on the hotline's clock.

Figures (None where nothing was counted, or where the line has no such target):

- ``offered``: inbound calls queued for agents; ``answered``: those an agent took.
- ``service_level``: answered within the line's ``answer_within_s`` / offered; ``asa_s``: mean wait of
  the answered. A line staffed by occupancy only (``max_occupancy``, the elder line) has no speed
  figures and no speed targets: speed must never be its target.
- ``abandon``: offered calls the caller gave up on while queued (``abandoned``, ``caller_hangup``).
- ``aht_s``: mean talk time of the calls agents took: inbound calls, and (team, agent) campaign calls
  handed to an agent (answered to ended).
- ``resolution``: settled on the call / wrapped up: a campaign call whose wrap-up's disposition has
  the action ``done``; an inbound call whose case record (工单) was closed on the call (``closed``).
- ``satisfaction``: mean post-call survey score (1-5, ``call_surveys``) and ``surveys``, how many.
- ``hours``: agents' worked hours (breaks excluded) from the state ledger (team and agent rows).

The *team* is the whole centre (there are no team records yet). Targets per line: the line's service
level and answer time (none for an occupancy line), resolution >= 95%, satisfaction >= 4.8; each row
says which it met (``met``: name -> bool).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.models import AgentStateChange
from agents.states import transitions
from core.i18n import _
from dialer.dispositions import DEFAULT_DISPOSITIONS
from dialer.models import Attempt, Campaign
from hotline.config import InboundConfig, InboundNumber
from hotline.models import Case, InboundCallRecord
from ivr.models import CallSurvey
from workforce.hours import HoursRules, shifts

By = Literal["day", "week"]
Group = Literal["line", "team", "agent"]
TEAM = "team"
RESOLUTION_TARGET = 0.95
SATISFACTION_TARGET = 4.8
ABANDONED = ("abandoned", "caller_hangup")
COLUMNS = (
    "group",
    "name",
    "period",
    "offered",
    "answered",
    "service_level",
    "asa_s",
    "abandon",
    "aht_s",
    "resolution",
    "satisfaction",
    "surveys",
    "hours",
)


class ReportError(ValueError):
    pass


@dataclass
class Acc:
    offered: int = 0
    answered: int = 0
    within: int = 0
    speed_calls: int = 0  # offered calls on lines with a speed target
    waits: list[float] = field(default_factory=list)
    abandoned: int = 0
    talks: list[float] = field(default_factory=list)
    wrapped: int = 0
    resolved: int = 0
    scores: list[int] = field(default_factory=list)
    worked_s: float = 0.0


def _mean(values: list[float] | list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Window:
    first: date
    last: date
    by: By
    tz: ZoneInfo

    def bounds(self) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.first, time.min, self.tz),
            datetime.combine(self.last + timedelta(days=1), time.min, self.tz),
        )

    def period(self, moment: datetime) -> str:
        day = moment.astimezone(self.tz).date()
        if self.by == "day":
            return day.isoformat()
        year, week, _day = day.isocalendar()
        return f"{year}-W{week:02d}"


def _targets(line: InboundNumber | None) -> dict[str, float | None]:
    speed = line is not None and line.max_occupancy is None
    return {
        "service_level": line.service_level.level if speed and line else None,
        "answer_within_s": line.service_level.answer_within_s if speed and line else None,
        "resolution": RESOLUTION_TARGET,
        "satisfaction": SATISFACTION_TARGET,
    }


def _done_codes(session: Session) -> dict[int, set[str]]:
    defaults = {d.code for d in DEFAULT_DISPOSITIONS if d.action.value == "done"}
    out: dict[int, set[str]] = {}
    for cid, items in session.execute(select(Campaign.id, Campaign.dispositions)):
        out[cid] = {d["code"] for d in items if d.get("action") == "done"} if items else defaults
    return out


def report(
    session: Session,
    config: InboundConfig,
    first: date,
    last: date,
    *,
    by: By = "day",
    group: Group = "line",
    rules: HoursRules | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The report's rows (group, name, period, figures, targets, met), by name then period."""
    if last < first:
        raise ReportError(_("to {last} is before from {first}", last=last, first=first))
    if (last - first).days > 400:
        raise ReportError(_("a report covers at most 400 days"))
    tz = ZoneInfo(config.timezone)
    window = Window(first, last, by, tz)
    start, end = window.bounds()
    lines = {ln.name: ln for ln in config.numbers.values()}
    accs: dict[tuple[str, str], Acc] = defaultdict(Acc)

    def keys(line: str | None, agent: str | None) -> list[str]:
        if group == "line":
            return [line] if line else []
        if group == "team":
            return [TEAM]
        return [agent] if agent else []

    calls = session.scalars(
        select(InboundCallRecord).where(
            InboundCallRecord.queued.is_(True),
            InboundCallRecord.arrived_at >= start,
            InboundCallRecord.arrived_at < end,
        )
    )
    for call in calls:
        line = lines.get(call.line or "")
        period = window.period(call.arrived_at)
        answered = call.outcome == "agent" and bool(call.agent)
        for key in keys(call.line, call.agent if answered else None):
            acc = accs[(key, period)]
            acc.offered += 1
            acc.abandoned += call.outcome in ABANDONED
            speed = line is None or line.max_occupancy is None
            if speed:
                acc.speed_calls += 1
            if answered:
                acc.answered += 1
                acc.talks.append(call.talk_s)
                if speed:
                    acc.waits.append(call.wait_s)
                    target = line.service_level.answer_within_s if line else 20.0
                    acc.within += call.wait_s <= target
    cases = session.scalars(select(Case).where(Case.created_at >= start, Case.created_at < end))
    for case in cases:
        for key in keys(case.line, case.agent):
            acc = accs[(key, window.period(case.created_at))]
            acc.wrapped += 1
            acc.resolved += case.status == "closed"
    if group != "line":
        done = _done_codes(session)
        attempts = session.scalars(
            select(Attempt).where(
                Attempt.agent.is_not(None), Attempt.answered_at >= start, Attempt.answered_at < end
            )
        )
        for attempt in attempts:
            assert attempt.answered_at is not None
            for key in keys(None, attempt.agent):
                acc = accs[(key, window.period(attempt.answered_at))]
                if attempt.ended_at is not None:
                    acc.talks.append((attempt.ended_at - attempt.answered_at).total_seconds())
                if attempt.disposition is not None:
                    acc.wrapped += 1
                    acc.resolved += attempt.disposition in done.get(attempt.campaign_id, set())
    surveys = session.scalars(
        select(CallSurvey).where(CallSurvey.answered_at >= start, CallSurvey.answered_at < end)
    )
    for survey in surveys:
        for key in keys(survey.line, survey.agent):
            accs[(key, window.period(survey.answered_at))].scores.append(survey.score)
    if group != "line" and rules is not None:
        _hours(session, accs, window, rules, now, agents={k for k, _p in accs} - {TEAM}, team=group == "team")
    rows = []
    for (key, period), acc in sorted(accs.items()):
        targets = _targets(lines.get(key) if group == "line" else None)
        speed = targets["service_level"] is not None or group != "line"
        row: dict[str, Any] = {
            "group": group,
            "name": key,
            "period": period,
            "offered": acc.offered,
            "answered": acc.answered,
            "service_level": _r(_share(acc.within, acc.speed_calls), 4) if speed else None,
            "asa_s": _r(_mean(acc.waits), 1) if speed else None,
            "abandon": _r(_share(acc.abandoned, acc.offered), 4),
            "aht_s": _r(_mean(acc.talks), 1),
            "resolution": _r(_share(acc.resolved, acc.wrapped), 4),
            "satisfaction": _r(_mean(acc.scores), 2),
            "surveys": len(acc.scores),
            "hours": round(acc.worked_s / 3600, 2) if group != "line" else None,
            "targets": targets,
        }
        row["met"] = _met(row, targets)
        rows.append(row)
    return {
        "group": group,
        "by": by,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": config.timezone,
        "rows": rows,
    }


def _met(row: dict[str, Any], targets: dict[str, float | None]) -> dict[str, bool]:
    met: dict[str, bool] = {}
    if targets["service_level"] is not None and row["service_level"] is not None:
        met["service_level"] = row["service_level"] >= targets["service_level"]
    if targets["answer_within_s"] is not None and row["asa_s"] is not None:
        met["asa_s"] = row["asa_s"] <= targets["answer_within_s"]
    if row["resolution"] is not None:
        met["resolution"] = row["resolution"] >= RESOLUTION_TARGET
    if row["satisfaction"] is not None:
        met["satisfaction"] = row["satisfaction"] >= SATISFACTION_TARGET
    return met


def _hours(
    session: Session,
    accs: dict[tuple[str, str], Acc],
    window: Window,
    rules: HoursRules,
    now: datetime,
    agents: set[str],
    team: bool,
) -> None:
    start, end = window.bounds()
    if team:
        agents = set(
            session.scalars(
                select(AgentStateChange.agent)
                .where(AgentStateChange.since >= start - timedelta(days=2), AgentStateChange.since < end)
                .distinct()
            )
        )
    else:
        agents |= set(
            session.scalars(
                select(AgentStateChange.agent)
                .where(AgentStateChange.since >= start, AgentStateChange.since < end)
                .distinct()
            )
        )
    for agent in sorted(agents):
        changes = transitions(session, agent, start - timedelta(days=2), end + timedelta(hours=36))
        for shift in shifts(changes, min(now, end + timedelta(hours=36)), rules):
            if not start <= shift.start < end:
                continue
            key = TEAM if team else agent
            accs[(key, window.period(shift.start))].worked_s += shift.worked_s


def team_table(session: Session, config: InboundConfig, first: date, last: date) -> list[dict[str, Any]]:
    """Per agent over the whole period, the team table supervisors read beside the report: ``calls``
    taken (inbound calls they answered, campaign calls handed to them or placed by them), ``talk_s``
    (their talk time on those), ``satisfaction`` (mean survey score) with ``surveys``, and
    ``cooldowns`` (rests after flagged, escalated or very long calls, agents.help). By name."""
    from agents.help.models import AgentCooldown  # the rests are the help feature's records

    if last < first:
        raise ReportError(_("to {last} is before from {first}", last=last, first=first))
    start, end = Window(first, last, "day", ZoneInfo(config.timezone)).bounds()
    calls: dict[str, int] = defaultdict(int)
    talk: dict[str, float] = defaultdict(float)
    scores: dict[str, list[int]] = defaultdict(list)
    rests: dict[str, int] = defaultdict(int)
    for agent, talk_s in session.execute(
        select(InboundCallRecord.agent, InboundCallRecord.talk_s).where(
            InboundCallRecord.outcome == "agent",
            InboundCallRecord.agent.is_not(None),
            InboundCallRecord.arrived_at >= start,
            InboundCallRecord.arrived_at < end,
        )
    ):
        calls[str(agent)] += 1
        talk[str(agent)] += talk_s or 0.0
    for agent, answered, ended in session.execute(
        select(Attempt.agent, Attempt.answered_at, Attempt.ended_at).where(
            Attempt.agent.is_not(None), Attempt.answered_at >= start, Attempt.answered_at < end
        )
    ):
        calls[str(agent)] += 1
        if ended is not None and answered is not None:
            talk[str(agent)] += (ended - answered).total_seconds()
    for agent, score in session.execute(
        select(CallSurvey.agent, CallSurvey.score).where(
            CallSurvey.agent.is_not(None), CallSurvey.answered_at >= start, CallSurvey.answered_at < end
        )
    ):
        scores[str(agent)].append(score)
    for (agent,) in session.execute(
        select(AgentCooldown.agent).where(AgentCooldown.started_at >= start, AgentCooldown.started_at < end)
    ):
        rests[agent] += 1
    return [
        {
            "agent": agent,
            "calls": calls[agent],
            "talk_s": round(talk[agent]),
            "satisfaction": _r(_mean(scores[agent]), 2),
            "surveys": len(scores[agent]),
            "cooldowns": rests[agent],
        }
        for agent in sorted(set(calls) | set(scores) | set(rests))
    ]


def to_csv(data: dict[str, Any]) -> bytes:
    """The rows as CSV (UTF-8 with a BOM, so Excel shows Chinese names)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in data["rows"]:
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return text.getvalue().encode("utf-8-sig")

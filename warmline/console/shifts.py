"""The shifts page: agents pick and drop open hours of a line's week with plain buttons in a table
(no script needed; the result is said in the live status region); supervisors and managers see who
works each hour, the gaps against the forecast, and publish the week."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.auth.models import Role, User
from core.db import utcnow
from core.deps import Roles, SessionDep, SettingsDep
from core.formats import day as day_text
from core.formats import weekday
from core.i18n import _
from hotline.config import InboundConfig, load_config
from warmline.console.pages import _section, render
from workforce.forecast import parse_week
from workforce.shifts import Rota, ShiftError, drop, monday_of, pick, publish, rota, week_name

router = APIRouter(include_in_schema=False)
SECTION = _section("/console/shifts")
PageUser = Annotated[User, Depends(Roles(*SECTION.roles, page=True))]
PLANNERS = (Role.supervisor, Role.manager, Role.admin)


def _hour_name(start: datetime) -> str:
    """'星期一 12月14日 09:00' / 'Monday Dec 14, 2026 09:00': the hour as a button names it."""
    return f"{weekday(start.weekday())} {day_text(start.date())} {start:%H:%M}"


def _rows(found: Rota, user: User) -> list[dict[str, Any]]:
    return [
        {
            "start": h.start.isoformat(timespec="minutes"),
            "id": f"{h.start:%Y%m%d%H}",
            "name": _hour_name(h.start),
            "end": f"{h.start.hour + 1:02d}:00",
            "needed": h.needed,
            "picked": len(h.agents),
            "open": h.open,
            "agents": ", ".join(h.agents),
            "mine": user.name in h.agents,
        }
        for h in found.hours
    ]


def _choice(config: InboundConfig, settings_tz: str, line: str | None, week: str | None) -> tuple[str, date]:
    names = sorted(ln.name for ln in config.numbers.values())
    chosen = line or (names[0] if names else "")
    if week:
        return chosen, parse_week(week)
    return chosen, monday_of(utcnow().astimezone(ZoneInfo(settings_tz)).date())


def _page(
    request: Request, session: SessionDep, settings: SettingsDep, user: User, *,
    line: str | None, week: str | None, status: str | None = None, error: str | None = None,
    code: int = 200,
) -> HTMLResponse:  # fmt: skip
    config = load_config(settings.inbound_config)
    lines = sorted(ln.name for ln in config.numbers.values())
    found = None
    try:
        chosen, monday = _choice(config, config.timezone, line, week)
        if chosen:
            found = rota(session, config, chosen, monday)
    except ValueError as exc:
        error, code = str(exc), 422
        chosen, monday = (line or ""), monday_of(utcnow().astimezone(ZoneInfo(config.timezone)).date())
    planner = user.role in PLANNERS
    rows = _rows(found, user) if found else []
    if status is None and found is not None:
        status = _(
            "{line}, week {week}: {gaps} open agent-hours of {needed}.",
            line=found.line, week=found.week, gaps=sum(h.open for h in found.hours),
            needed=sum(h.needed for h in found.hours),
        )  # fmt: skip
    resp = render(
        request, "shifts.html", _("Shifts"), user, section=SECTION, lines=lines, line=chosen,
        week=week_name(monday), rota=found, rows=rows, planner=planner, status=status, error=error,
    )  # fmt: skip
    resp.status_code = code
    return resp


@router.get("/console/shifts")
def shifts_page(
    request: Request, session: SessionDep, settings: SettingsDep, user: PageUser,
    line: str | None = None, week: str | None = None, done: str | None = None,
) -> HTMLResponse:  # fmt: skip
    return _page(request, session, settings, user, line=line, week=week, status=done)


def _back(line: str, week: str, message: str) -> RedirectResponse:
    query = urlencode({"line": line, "week": week, "done": message})
    return RedirectResponse(f"/console/shifts?{query}", status_code=303)


Text = Annotated[str, Form(max_length=64)]


@router.post("/console/shifts/pick")
def pick_hour(
    request: Request, session: SessionDep, settings: SettingsDep, user: PageUser,
    line: Text, week: Text, start: Text,
) -> Response:  # fmt: skip
    config = load_config(settings.inbound_config)
    try:
        hour = pick(session, config, line, user.name, start, actor=user.name, now=utcnow())
    except ShiftError as exc:
        session.rollback()
        return _page(request, session, settings, user, line=line, week=week, error=str(exc), code=exc.status)
    return _back(line, week, _("You work {hour} on {line}.", hour=_hour_name(hour.start), line=line))


@router.post("/console/shifts/drop")
def drop_hour(
    request: Request, session: SessionDep, settings: SettingsDep, user: PageUser,
    line: Text, week: Text, start: Text, agent: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:  # fmt: skip
    config = load_config(settings.inbound_config)
    planner = user.role in PLANNERS
    whom = agent if (agent and planner) else user.name
    try:
        drop(session, config, line, whom, start, actor=user.name, now=utcnow(), supervisor=planner)
    except ShiftError as exc:
        session.rollback()
        return _page(request, session, settings, user, line=line, week=week, error=str(exc), code=exc.status)
    when = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(config.timezone))
    return _back(line, week, _("{agent} no longer works {hour}.", agent=whom, hour=_hour_name(when)))


@router.post("/console/shifts/publish")
def publish_week(
    request: Request, session: SessionDep, settings: SettingsDep,
    user: Annotated[User, Depends(Roles(Role.supervisor, Role.manager, page=True))],
    line: Text, week: Text,
) -> Response:  # fmt: skip
    config = load_config(settings.inbound_config)
    try:
        found = publish(session, config, line, parse_week(week), actor=user.name, now=utcnow())
    except ValueError as exc:
        session.rollback()
        code = exc.status if isinstance(exc, ShiftError) else 422
        return _page(request, session, settings, user, line=line, week=week, error=str(exc), code=code)
    gaps = sum(h.open for h in found.hours)
    return _back(
        line,
        week,
        _("Week {week} on {line} published; {gaps} open agent-hours.", week=week, line=line, gaps=gaps),
    )
